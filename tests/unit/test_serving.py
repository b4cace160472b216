"""Requests to a model server: a kept connection that the server drops is not a failed check."""

import asyncio
import json

from adroit.probes import serving

ANSWER = json.dumps({"outputs": [{"name": "predict", "data": [0, 2]}]}).encode()


async def _server(answers: int) -> tuple[asyncio.Server, str]:
    """An HTTP/1.1 server that keeps each connection after an answer, as servers do, and
    then closes it when the next request arrives after `answers` answers on it (what a
    server that closes an idle connection does as the client sends on it)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if answered == answers:
                    break
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                    + ANSWER
                )
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v2/models/iris/infer"


def test_a_kept_connection_the_server_closed_is_no_failed_prediction() -> None:
    async def two_predictions(answers: int) -> list[serving.Answer]:
        server, url = await _server(answers)
        try:
            async with serving.session() as session:
                return [await serving.post_json(session, url, "{}", 5.0) for _ in range(2)]
        finally:
            server.close()
            await server.wait_closed()

    first, second = asyncio.run(two_predictions(answers=1))
    assert (first.status, first.body) == (200, ANSWER.decode())
    assert (second.status, second.body) == (200, ANSWER.decode()), second.error

    # A server that drops every request answers nothing, and that is reported.
    first, second = asyncio.run(two_predictions(answers=0))
    assert first.status is None
    assert first.error == "Server disconnected"
