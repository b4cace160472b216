"""Serve the admission webhook (kopf's server) and publish its configuration."""

import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names
from adroit.api.settings import Admission
from adroit.kube.secrets import OperatorSecrets
from adroit.plan.webhooks import webhook_configuration

log = logging.getLogger("adroit.webhook")
# The client's stubs leave out _content_type, which its methods accept in **kwargs.
_APPLY: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}


def hosts_for(admission: Admission) -> tuple[str, ...]:
    """The names the webhook's certificate must carry."""
    if admission.service is not None:
        svc = admission.service
        return (svc.name, f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc")
    return (admission.host or admission.listen,)


async def publish(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    """Apply the configuration, unless it already is exactly that (a restart writes nothing)."""
    reg = client.AdmissionregistrationV1Api(api)
    name = manifest["metadata"]["name"]
    try:
        current = api.sanitize_for_serialization(
            await reg.read_mutating_webhook_configuration(name)
        )
        hooks = current.get("webhooks") or []
        if len(hooks) == len(manifest["webhooks"]) and all(
            all(have.get(k) == v for k, v in want.items())
            for have, want in zip(hooks, manifest["webhooks"], strict=True)
        ):
            return
    except ApiException as error:
        if error.status != 404:
            raise
    await reg.patch_mutating_webhook_configuration(
        name,
        manifest,
        field_manager=names.FIELD_MANAGER,
        force=True,
        **_APPLY,
    )
    log.info("published the admission webhook configuration %s", name)


class WebhookServer(kopf.WebhookServer):
    """kopf's HTTPS server, with our certificate, publishing our own scoped configuration."""

    def __init__(
        self,
        admission: Admission,
        namespace: str,
        secret: OperatorSecrets,
        review: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="adroit-webhook-")
        cert, key = Path(self._dir.name, "tls.crt"), Path(self._dir.name, "tls.key")
        cert.write_bytes(secret.tls_cert)
        key.write_bytes(secret.tls_key)
        key.chmod(0o600)
        super().__init__(
            addr=admission.listen,
            port=admission.port,
            host=admission.host or admission.listen,
            certfile=str(cert),
            pkeyfile=str(key),
            cadata=secret.tls_cert,
        )
        self.admission, self.namespace, self.ca = admission, namespace, secret.tls_cert
        self.review = review  # answers each AdmissionReview instead of kopf's engine

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        from adroit.kube.cluster import connect

        async for config in super().__call__(self.review or fn):
            service = self.admission.service
            manifest = webhook_configuration(
                self.namespace,
                self.ca,
                base_url=str(config.get("url") or "").rstrip("/"),
                service=service.model_dump() if service else None,
            )
            api = await connect()
            try:
                await publish(api, manifest)
            finally:
                await api.close()
            log.info(
                "admission webhook listening on %s:%s", self.admission.listen, self.admission.port
            )
            yield config
