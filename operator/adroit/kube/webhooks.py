"""Serve the admission webhook (from its own thread) and fill in its configuration's CA bundle.

The configuration itself is installed with the operator (deploy/webhooks.yaml,
or rendered for local settings by `make run` and the tests): the operator may
read and patch only its own, and changes nothing in it but `caBundle`.
"""

import asyncio
import base64
import concurrent.futures
import contextlib
import logging
import ssl
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api.settings import Admission, Settings
from adroit.kube.metrics import ADMISSION_TIME
from adroit.kube.secrets import OperatorSecrets
from adroit.plan.webhooks import ca_bundle_patch, configuration_for, differences

log = logging.getLogger("adroit.webhook")
# The client's stubs leave out _content_type, which its methods accept in **kwargs.
_JSON_PATCH: dict[str, Any] = {"_content_type": "application/json-patch+json"}
HOW_TO_INSTALL = (
    "install it with the operator: `kubectl apply -f deploy/webhooks.yaml` in a cluster "
    "(control namespace `adroit`), or for other settings "
    "`.venv/bin/python hack/cluster/webhook-configuration.py --settings FILE | kubectl apply -f -` "
    "as an administrator (`make run` does this for its settings)"
)


class WebhookConfigurationError(kopf.PermanentError):
    """The webhook configuration is missing or out of the operator's reach: it cannot start."""


def hosts_for(admission: Admission) -> tuple[str, ...]:
    """The names the webhook's certificate must carry."""
    if admission.service is not None:
        svc = admission.service
        return (svc.name, f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc")
    return (admission.host or admission.listen,)


async def installed_configuration(api: client.ApiClient, settings: Settings) -> dict[str, Any]:
    """The configuration installed for these settings; WebhookConfigurationError when missing.

    Warns of each way it differs from what these settings expect (caBundle aside).
    """
    reg = client.AdmissionregistrationV1Api(api)
    wanted = configuration_for(settings)
    name = wanted["metadata"]["name"]
    try:
        installed: dict[str, Any] = api.sanitize_for_serialization(
            await reg.read_mutating_webhook_configuration(name)
        )
    except ApiException as error:
        if error.status == 404:
            raise WebhookConfigurationError(
                f"the admission webhook configuration MutatingWebhookConfiguration/{name} "
                f"does not exist, and the operator does not create it: {HOW_TO_INSTALL}"
            ) from None
        if error.status == 403:
            raise WebhookConfigurationError(
                f"the operator may not read MutatingWebhookConfiguration/{name}: give its "
                f"identity get and patch on it by name (deploy/rbac/operator.yaml)"
            ) from None
        raise
    for difference in differences(installed, wanted):
        log.warning(
            "MutatingWebhookConfiguration/%s is not what these settings expect (%s): %s",
            name,
            difference,
            HOW_TO_INSTALL,
        )
    return installed


async def install_ca_bundle(api: client.ApiClient, settings: Settings, ca: bytes) -> None:
    """Put the operator's certificate into its installed configuration's webhooks.

    Writes nothing when every webhook already has it (a restart writes nothing).
    The configuration must exist: the operator does not create one.
    """
    installed = await installed_configuration(api, settings)
    patch = ca_bundle_patch(installed, ca)
    if not patch:
        return
    name = installed["metadata"]["name"]
    reg = client.AdmissionregistrationV1Api(api)
    await reg.patch_mutating_webhook_configuration(name, patch, **_JSON_PATCH)
    log.info("put the webhook's certificate into MutatingWebhookConfiguration/%s", name)


MAX_REVIEW_BYTES = 16 * 1024 * 1024


class WebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server, with our certificate, which it puts into our configuration."""

    def __init__(
        self,
        settings: Settings,
        secret: OperatorSecrets,
        review: Callable[..., Awaitable[Any]] | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        admission = settings.admission
        # The TLS stack reads the certificate from files: into `cert_dir` (in a container,
        # the one writable volume, as with controller-runtime's --cert-dir), else into a
        # temporary directory removed at exit.
        if cert_dir is None:
            self._dir: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
                prefix="adroit-webhook-"
            )
            cert_dir = Path(self._dir.name)
        else:
            self._dir = None
            cert_dir.mkdir(parents=True, exist_ok=True)
        cert, key = cert_dir / "tls.crt", cert_dir / "tls.key"
        cert.write_bytes(secret.tls_cert)
        key.unlink(missing_ok=True)
        key.touch(mode=0o600)  # never readable by others, not even for a moment
        key.write_bytes(secret.tls_key)
        super().__init__(
            addr=admission.listen,
            port=admission.port,
            host=admission.host or admission.listen,
            certfile=str(cert),
            pkeyfile=str(key),
            cadata=secret.tls_cert,
        )
        self.settings, self.admission, self.ca = settings, admission, secret.tls_cert
        self.review = review  # answers each AdmissionReview instead of kopf's engine
        self.listening = False  # for /readyz

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        """Serve from a thread with its own event loop until cancelled.

        The operator's loop steps trains and writes thousands of objects in a rollout; a
        review that waited for it would be slow at the API server, where the failure
        policy is Fail. The thread answers as soon as it gets the interpreter (every few
        milliseconds at most), and asks the API server its approval questions with its
        own client, which also puts the certificate into the webhook configuration.
        """

        async def install(api: client.ApiClient) -> None:
            await install_ca_bundle(api, self.settings, self.ca)

        thread = WebhookThread(self, self.review or fn, then=install)
        thread.start()
        try:
            await asyncio.wrap_future(thread.ready)
            self.listening = True
            log.info(
                "admission webhook listening on %s:%s", self.admission.listen, self.admission.port
            )
            url = self._build_url("https", self.host or self.addr or "", self.port or 0, "")
            yield {"url": url, "caBundle": base64.b64encode(self.ca).decode()}
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            self.listening = False
            thread.stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WITHIN):
                    await asyncio.wrap_future(thread.ended)


STOP_WITHIN = 10.0  # seconds for the webhook's thread to close its connections at exit


class WebhookThread(threading.Thread):
    """The webhook's HTTPS server, on its own event loop in this thread.

    `ready` resolves once it listens and `then` (given this loop's API client) is done, or
    fails with why it cannot; `stop()` ends it, and `ended` resolves when it has.
    The handlers get this loop's API client as `api`. Its TLS context, its client and
    `then` are made and run here: the operator's loop waits for none of them.
    """

    def __init__(
        self,
        server: WebhookServer,
        review: Callable[..., Awaitable[Any]],
        then: Callable[[client.ApiClient], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(name="adroit-webhook", daemon=True)
        self.server, self.review, self.then = server, review, then
        self.context: ssl.SSLContext | None = None
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False

    def run(self) -> None:
        try:
            # kopf's, from the certificate files; made here, as it loads the system's CA
            # certificates too: tens of milliseconds the operator's loop need not wait for.
            self.context = self.server._build_ssl()[1]
            asyncio.run(self._serve())
        except BaseException as error:  # handed to the operator's loop
            if not self.ready.done():
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    self.ready.set_exception(error)
            elif not self._stopping:
                log.exception("the admission webhook's thread ended")
        finally:
            self.ended.set_result(None)

    def stop(self) -> None:
        self._stopping = True  # before it listens: it stops as soon as it does
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to stop
                loop.call_soon_threadsafe(stop.set)

    async def _serve(self) -> None:
        from adroit.kube.cluster import connect

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server, review = self.server, self.review
        api = await connect()

        async def answer(
            request: Any,
            *,
            webhook: str | None = None,
            headers: dict[str, str] | None = None,
            sslpeer: dict[str, Any] | None = None,
        ) -> Any:
            return await review(request, api=api, webhook=webhook, headers=headers, sslpeer=sslpeer)

        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            started = time.perf_counter()
            try:
                return await server._serve(answer, request)
            finally:
                webhook = request.match_info.get("id", "")
                ADMISSION_TIME.labels(webhook).observe(time.perf_counter() - started)

        # Room for big reviews: an AdmissionReview carries the object twice (old and new),
        # and a Train of 2,000 cars is more than aiohttp's 1 MiB default, which would
        # refuse it (413) and with it every approval of that train.
        app = aiohttp.web.Application(client_max_size=MAX_REVIEW_BYTES)
        app.add_routes([aiohttp.web.post("/{id:.*}", serve)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False)
        try:
            await runner.setup()
            site = aiohttp.web.TCPSite(
                runner,
                server.addr or None,
                server.port,
                ssl_context=self.context,
                reuse_address=True,
                reuse_port=True,  # replicas on one host share the port, the kernel balances
            )
            await site.start()
            if self.then is not None:  # once it listens: a caBundle in place is answered
                await self.then(api)
            # Not if the operator stopped waiting for it (it is stopping).
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self.ready.set_result(None)
            if not self._stopping:
                await self._stop.wait()
        finally:
            await runner.cleanup()
            await api.close()
