"""The notification webhook: a Slack-compatible {"text": ...} POST, besides the API server."""

import logging

import aiohttp

log = logging.getLogger("adroit.notify")


def slack_escaped(text: str) -> str:
    """Text as Slack shows it literally: &, < and > would otherwise make links and mentions
    (a flavor name or an API server's message is not to ping anyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def notify(url: str, text: str) -> None:
    """Tell people; a webhook that is down is logged, never a reason to stop a train."""
    text = slack_escaped(text)
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
