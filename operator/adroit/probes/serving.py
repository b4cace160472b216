"""One request to a model server, timed."""

import asyncio
import time

import aiohttp

from adroit.plan.verification import EXCERPT, Answer

# Enough of an answer to judge its outputs; the rest is never read.
MAX_BODY = 1 << 20


async def post_json(session: aiohttp.ClientSession, url: str, body: str, within: float) -> Answer:
    """POST `body` as JSON; the answer, or why there was none, with the time it took."""
    started = time.monotonic()
    try:
        async with session.post(
            url,
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            raw = await response.content.read(MAX_BODY)
            return Answer(response.status, raw.decode(errors="replace"), time.monotonic() - started)
    except (aiohttp.ClientError, TimeoutError) as error:
        why = str(error) or type(error).__name__
        if isinstance(error, TimeoutError):
            why = f"no answer within {within:g}s"
        return Answer(None, "", time.monotonic() - started, error=why[:EXCERPT])


async def fixed_rate(
    session: aiohttp.ClientSession,
    requests: list[tuple[str, str]],
    count: int,
    interval: float,
    within: float,
) -> list[Answer]:
    """`count` requests, one every `interval` seconds whether or not the last has answered
    (an open-loop load, as a load tester sends), cycling through `requests` (url, body)."""
    started = time.monotonic()
    tasks = []
    for i in range(count):
        delay = started + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        url, body = requests[i % len(requests)]
        tasks.append(asyncio.create_task(post_json(session, url, body, within)))
    return list(await asyncio.gather(*tasks))
