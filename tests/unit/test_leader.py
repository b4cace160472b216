"""Leader election keeps standing through a broken connection to the API server."""

import asyncio
from typing import Any

import aiohttp
import pytest

from adroit.api.settings import LeaderElection
from adroit.kube import leader


@pytest.mark.parametrize(
    "error",
    [aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("response cut short")],
    ids=["disconnected", "cut-short"],
)
def test_a_broken_connection_is_a_failed_attempt_not_the_end(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API server that restarts drops its pooled connections: the renewal on one of
    them fails, and the elector tries again at its next retry, as for a timeout."""

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(leader, "request", broken)
    elector = leader.Elector(None, "adroit", LeaderElection(), me="me")  # type: ignore[arg-type]
    assert asyncio.run(elector._attempt()) is False
    asyncio.run(elector.release())  # says so in the log, and returns
