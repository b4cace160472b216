"""The notification webhook: a Slack-compatible {"text": ...} POST, besides the API server."""

import asyncio
import logging

import aiohttp

log = logging.getLogger("adroit.notify")


def slack_escaped(text: str) -> str:
    """Text as Slack shows it literally: &, < and > would otherwise make links and mentions
    (a flavor name or an API server's message is not to ping anyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A message is tried this many times, waiting 1, 2, 4, ... s in between (about 15 s in all).
ATTEMPTS = 5
FIRST_DELAY = 1.0


def _worth_retrying(status: int) -> bool:
    return status == 429 or status >= 500


async def notify(url: str, text: str) -> str | None:
    """Tell people: None once the webhook took the message, else why it did not.

    A refusal that cannot change (4xx) is not repeated; a webhook that is down, busy or
    slow is tried again with backoff. Never a reason to stop a train.
    """
    text = slack_escaped(text)
    timeout = aiohttp.ClientTimeout(total=10)
    why = "not tried"
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(FIRST_DELAY * 2 ** (attempt - 1))
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json={"text": text}) as response,
            ):
                if response.status < 300:
                    return None
                why = f"the webhook answered {response.status}"
                if not _worth_retrying(response.status):
                    break
        except (aiohttp.ClientError, TimeoutError) as error:
            why = f"the webhook could not be reached: {error or type(error).__name__}"
        log.warning("notification attempt %d of %d failed: %s", attempt + 1, ATTEMPTS, why)
    return f"{why} ({attempt + 1} attempt(s))"
