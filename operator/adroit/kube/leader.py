"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.

A candidate takes the Lease when nobody holds it, or when its record has not
changed for leaseDuration as this process measured it (its own clock only: no
comparison of clocks between machines). The holder renews every retryPeriod
and stops leading when it could not renew for renewDeadline, before anyone
else may take the Lease. Every write carries the resourceVersion read, so of
two candidates at most one wins. A leader that stops hands the Lease over at
once (releases it), so a rolling update does not wait for it to expire.
"""

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api.settings import LeaderElection
from adroit.kube.metrics import LEADER
from adroit.kube.rest import FAILURES, KINDS, request

log = logging.getLogger("adroit.leader")


def identity() -> str:
    """Host name plus a random suffix, as controller-runtime names its candidates."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        config: LeaderElection,
        me: str | None = None,
    ) -> None:
        self.api, self.namespace, self.config = api, namespace, config
        self.me = me or identity()
        self.leading = False
        self._seen: tuple[str, float] | None = None  # (the record we saw, when it changed)

    @property
    def _path(self) -> str:
        return KINDS["Lease"].path(self.namespace, self.config.lease_name)

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await request(self.api, "GET", self._path)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    async def _try(self) -> bool:
        """One attempt to take or renew the Lease; True while this process holds it."""
        loop = asyncio.get_running_loop()
        lease = await self._read()
        duration = int(self.config.lease_duration.total_seconds())
        mine = {
            "holderIdentity": self.me,
            "leaseDurationSeconds": duration,
            "renewTime": _now(),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.config.lease_name, "namespace": self.namespace},
                "spec": {**mine, "acquireTime": _now(), "leaseTransitions": 0},
            }
            try:
                await request(self.api, "POST", KINDS["Lease"].path(self.namespace), body=body)
            except ApiException as error:
                if error.status == 409:  # another candidate was quicker
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = f"{holder}/{spec.get('renewTime')}/{lease['metadata']['resourceVersion']}"
        if self._seen is None or self._seen[0] != record:
            self._seen = (record, loop.time())
        held_for = spec.get("leaseDurationSeconds") or duration
        expired = loop.time() - self._seen[1] > held_for
        if holder and holder != self.me and not expired:
            return False
        if holder != self.me:
            mine["acquireTime"] = _now()
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = {**spec, **mine}
        try:
            await request(self.api, "PUT", self._path, body=lease)
        except ApiException as error:
            if error.status == 409:  # changed since we read it: someone else renewed or took it
                return False
            raise
        return True

    async def _attempt(self) -> bool:
        try:
            async with asyncio.timeout(self.config.retry_period.total_seconds()):
                return await self._try()  # (wait_for could drop a cancellation: see Controller)
        except FAILURES as error:
            log.warning("leader election: %s", getattr(error, "reason", None) or error)
            return False

    async def _acquire(self, retry: float) -> None:
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(retry)

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait for the Lease, run `lead` while holding it, stop it when the Lease is lost,
        and stand again; cancel to stop (the Lease is then released)."""
        retry = self.config.retry_period.total_seconds()
        deadline = self.config.renew_deadline.total_seconds()
        task: asyncio.Task[None] | None = None
        try:
            while True:
                await self._acquire(retry)
                self.leading = True
                LEADER.labels(self.config.lease_name).set(1)
                log.info("leading as %s (Lease %s)", self.me, self.config.lease_name)
                task = asyncio.create_task(lead(), name="adroit-leader-work")
                loop = asyncio.get_running_loop()
                renewed = loop.time()
                while not task.done():
                    await asyncio.wait({task}, timeout=retry)
                    if task.done():
                        break
                    if await self._attempt():
                        renewed = loop.time()
                    elif loop.time() - renewed > deadline:
                        log.error("lost the Lease %s: reconciling stops", self.config.lease_name)
                        break
                self.leading = False
                LEADER.labels(self.config.lease_name).set(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            # Cancelled while leading: the work stops before the Lease is handed over, so
            # that no controller of this process goes on without it.
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if self.leading:
                self.leading = False
                LEADER.labels(self.config.lease_name).set(0)
                await self.release()

    async def release(self) -> None:
        """Hand the Lease over at once: holder cleared, as client-go's ReleaseOnCancel."""
        try:
            lease = await self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.me:
                return
            lease["spec"] = {
                **lease["spec"],
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": _now(),
            }
            await request(self.api, "PUT", self._path, body=lease)
            log.info("released the Lease %s", self.config.lease_name)
        except FAILURES as error:
            log.warning("could not release the Lease: %s", error)
