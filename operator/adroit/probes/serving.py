"""One request to a model server, timed."""

import asyncio
import time

import aiohttp

from adroit.plan.verification import EXCERPT, Answer

# Enough of an answer to judge its outputs; the rest is never read.
MAX_BODY = 1 << 20


# Seconds an idle connection to a model server is kept for the next request: less than
# the 5 s after which uvicorn (MLServer, KServe's Python servers) closes one. A server that
# closes it as the next request goes out would answer nothing to that request.
KEEPALIVE = 4.0


def session() -> aiohttp.ClientSession:
    """The client the checks share: connections are kept, for a shorter time than servers."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE))


def _closed_under_it(error: BaseException) -> bool:
    """The connection was closed or reset under the request: a kept connection the server
    had just dropped, not a server that refused it (that is ClientConnectorError)."""
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return True
    return isinstance(error, aiohttp.ClientOSError) and not isinstance(
        error, aiohttp.ClientConnectorError
    )


async def post_json(session: aiohttp.ClientSession, url: str, body: str, within: float) -> Answer:
    """POST `body` as JSON; the answer, or why there was none, with the time it took.

    A request whose connection is closed under it is sent once more, on a new connection: a
    prediction changes nothing, and a kept connection that the server closed at that moment
    says nothing of the model. A server that drops the second one too is reported.
    """
    started = time.monotonic()

    async def once() -> Answer:
        left = max(within - (time.monotonic() - started), 0.001)
        async with session.post(
            url,
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=left),
        ) as response:
            raw = await response.content.read(MAX_BODY)
            return Answer(response.status, raw.decode(errors="replace"), time.monotonic() - started)

    try:
        try:
            return await once()
        except aiohttp.ClientError as error:
            if not _closed_under_it(error):
                raise
            return await once()
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
