"""Operator start: settings, kopf's storage names, and a plain report of the cluster."""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf

from adroit.api.settings import Settings, parse_settings
from adroit.handlers import admission, reconciler
from adroit.handlers.reload import follow_settings
from adroit.handlers.serving import Readiness, serve
from adroit.kube.admission import reviewer
from adroit.kube.cluster import connect, describe_cluster, whoami
from adroit.kube.secrets import operator_secrets
from adroit.kube.webhooks import WebhookServer, hosts_for, installed_configuration

SETTINGS_ENV = "ADROIT_SETTINGS"


async def no_webhook_server(fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
    """admission.enabled false: the admission handlers stay registered with kopf (it refuses
    to run handlers without a server), and nothing ever serves them."""
    await asyncio.Event().wait()
    yield {}  # never reached: it only makes this an async generator, as kopf expects


def load_settings(path: str | None = None) -> Settings:
    """The settings named by `path`, else by $ADROIT_SETTINGS; SettingsError when bad."""
    source = path or os.environ.get(SETTINGS_ENV)
    if not source:
        raise kopf.PermanentError(
            f"no settings: set {SETTINGS_ENV}=FILE or run `adroit run --settings FILE`"
        )
    return parse_settings(Path(source).read_text(), source)


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    # kopf serves the admission webhook and runs startup and cleanup; it watches nothing
    # (the controller has its own watches), so it keeps no state on our objects.
    settings.posting.level = logging.WARNING
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per admission call
    # One exact control namespace: nothing to discover by listing namespaces or CRDs,
    # which a least-privilege identity may not do.
    settings.scanning.disabled = True
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]

    if getattr(memo, "settings", None) is None:
        memo.settings = load_settings()
        memo.settings_path = os.environ.get(SETTINGS_ENV)
    memo.readiness = Readiness()
    memo.serving = await serve(
        getattr(memo, "metrics_address", None),
        getattr(memo, "health_address", None),
        memo.readiness,
    )
    ours: Settings = memo.settings
    ns = ours.namespaces
    api = await connect()
    try:
        facts = await describe_cluster(api, [ns.control, ns.staging, ns.production])
    finally:
        await api.close()
    logger.info(
        "Adroit starting against %s (Kubernetes %s): Flavors and Trains in %r, stages %r and %r",
        facts.server,
        facts.version,
        ns.control,
        ns.staging,
        ns.production,
    )
    for missing in facts.missing_namespaces:
        logger.warning(
            "namespace %r does not exist yet: create it before a train needs it", missing
        )
    # One client for the start's questions (the webhook's thread has its own).
    memo.api = await connect()
    # The key signs the trains the operator forms, with or without the webhook.
    memo.secrets = await operator_secrets(
        memo.api, ns.control, ours.approval.signing_key_secret, hosts_for(ours.admission)
    )
    memo.operator_user = await whoami(memo.api)
    logger.info("running as %s", memo.operator_user)
    if ours.admission.enabled:
        # The configuration is installed with the operator, which only puts its certificate
        # into it (WebhookServer); a missing one stops the start, saying how to install it.
        await installed_configuration(memo.api, ours)
        handlers = {"flavors": admission.stamp_flavor_author, "trains": admission.check_and_sign}
        settings.admission.server = WebhookServer(
            ours,
            memo.secrets,
            reviewer(handlers, memo),
            cert_dir=getattr(memo, "webhook_cert_dir", None),
        )
        memo.readiness.webhook = settings.admission.server
    else:
        settings.admission.server = no_webhook_server
        logger.warning(
            "the admission webhook is off: any adroit.dev/approved=true approves, "
            "and nobody is recorded"
        )
    reconciler.start(memo)
    path = getattr(memo, "settings_path", None)
    if path:
        memo.settings_follower = asyncio.create_task(
            follow_settings(memo, path), name="adroit-settings"
        )
