"""Every request has a timeout: a server that accepts and never answers cannot hang a pass."""

import asyncio
import socket
import time

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.kube.rest import message_of, request, retryable


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]

        async def ask() -> None:
            config = client.Configuration(host=f"http://127.0.0.1:{port}")
            api = client.ApiClient(config)
            try:
                await request(api, "GET", "/api/v1/namespaces", request_timeout=0.5)
            finally:
                await api.close()

        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(ask())
        assert time.monotonic() - started < 5


def test_the_api_servers_own_message_is_kept() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = '{"kind":"Status","message":"Deployment.apps \\"x\\" is invalid: bad label"}'
    assert message_of(error) == 'Deployment.apps "x" is invalid: bad label'
    assert not retryable(error)
    assert retryable(ApiException(status=503, reason="Service Unavailable"))
    assert retryable(ApiException(status=429, reason="Too Many Requests"))
    assert retryable(TimeoutError())
