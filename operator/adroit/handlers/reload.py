"""Settings that change while the operator runs (a ConfigMap mounted as a file is updated
in place by the kubelet) are applied without a restart; a change that is not valid is
refused, naming each bad field, and the running settings stay."""

import asyncio
import logging
from pathlib import Path

import kopf

from adroit.api.settings import SettingsError, parse_settings
from adroit.handlers import reconciler

log = logging.getLogger("adroit.settings")
FOLLOW_EVERY = 2.0  # s between two looks at the settings file


async def follow_settings(memo: kopf.Memo, path: str, every: float = FOLLOW_EVERY) -> None:
    """Look at the settings file every `every` seconds; start the reconciler again with the
    new settings when they are valid and differ. The admission webhook reads them per request.
    The webhook server's own address and the namespaces are read at start only."""
    source = Path(path)
    last = await asyncio.to_thread(source.read_text)
    while True:
        await asyncio.sleep(every)
        try:
            text = await asyncio.to_thread(source.read_text)
        except OSError as error:
            log.warning("cannot read the settings %s: %s; the running ones stay", path, error)
            continue
        if text == last:
            continue
        last = text
        try:
            settings = parse_settings(text, path)
        except SettingsError as error:
            log.error("the changed settings are refused; the running ones stay. %s", error)
            continue
        if settings == memo.settings:
            continue
        if settings.namespaces != memo.settings.namespaces:
            log.error(
                "the changed settings move the namespaces, which takes a restart; "
                "the running settings stay"
            )
            continue
        memo.settings = settings
        log.info("settings changed in %s: the reconciler starts again with them", path)
        await reconciler.restart(memo)
