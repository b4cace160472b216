"""The notification webhook: a Slack-compatible {"text": ...} POST, besides the API server."""

import logging

import aiohttp

log = logging.getLogger("adroit.notify")


async def notify(url: str, text: str) -> None:
    """Tell people; a webhook that is down is logged, never a reason to stop a train."""
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json={"text": text}) as response,
        ):
            if response.status >= 300:
                log.warning("notification webhook answered %s", response.status)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("notification webhook failed: %s", error)
