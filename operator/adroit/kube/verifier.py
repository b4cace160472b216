"""Runs the verification checks of the train that is Verifying, off the reconcile path.

Each car's checks run as a task of their own (predictions, then the load check,
then, once the verification time is up, the metric queries), so a slow model
server holds up neither the event loop nor any other flavor. What they find is
kept in `results`, which the controller hands to the plan as World.checks; each
new finding enqueues the trains. The plan decides what runs
(plan.verification.checks_due) and what the answers mean. Every run ends with a
result, also one that raised; a read of the API server that meets a busy or
broken server (429, 5xx, a timeout) is asked again, with backoff.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from adroit.api.flavor import Prediction
from adroit.api.settings import Settings
from adroit.kube import rest
from adroit.plan.verification import (
    PREDICTION,
    PREDICTION_FAILED,
    SHADOW,
    CarChecks,
    Sample,
    ShadowSoak,
    checks_due,
    inference_path,
    judge_load,
    judge_metric,
    judge_prediction,
    judge_shadow,
    load_plan,
    metric_query,
    not_verifiable,
    side_numbers,
    soaks_due,
)
from adroit.plan.world import CheckResults, Verdict, World
from adroit.probes import prometheus, serving

log = logging.getLogger("adroit.verifier")
Key = tuple[str, str]
Due = dict[Key, CarChecks | ShadowSoak]  # what is due, by (train, flavor)
CHECK_ERROR = "CheckError"
# A busy, broken or unreachable API server (429, 5xx, a timeout) is asked again after
# 0.5 s, 1 s, 2 s ... 10 s at most, until the verification time is up, for at least
# RETRY_FOR and MIN_TRIES times: one such answer must not roll a whole train back.
MAX_RETRY_DELAY = 10.0
RETRY_FOR = timedelta(seconds=30)
MIN_TRIES = 3


def _round(check: "CarChecks | ShadowSoak") -> datetime:
    """What identifies one run of a car's checks (a new round starts them again)."""
    return check.until if isinstance(check, CarChecks) else check.ready_at


def _could_not_run(kind: str, name: str, what: str, error: Exception) -> Verdict:
    """A failed verdict for checks that raised (a bug): a clear result, never a wait for ever."""
    why = f"{what} could not run: {type(error).__name__}: {error}"
    return Verdict(kind, name, False, CHECK_ERROR, why)


class Verifier:
    def __init__(self, api: client.ApiClient, settings: Settings, found: Callable[[], None]):
        """`found` is called whenever a result arrives (the controller enqueues the trains)."""
        self.api, self.settings, self.found = api, settings, found
        self.results: dict[Key, CheckResults] = {}
        self._running: dict[Key, tuple[datetime, asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None

    def due(self, world: World) -> Due | None:
        """The checks and soaks due in this world: computation alone, so the controller runs
        it off the event loop. Never raises (None): a bug here must not keep the trains from
        being stepped."""
        try:
            due: Due = {c.key: c for c in checks_due(world, self.settings)}
            due.update({s.key: s for s in soaks_due(world, self.settings)})
            return due
        except Exception:
            log.exception("cannot work out which verification checks are due")
            return None

    def follow(self, due: Due | None) -> None:
        """Start the checks that are due and not running; forget those no longer due."""
        if due is None:
            return
        rounds = {key: _round(check) for key, check in due.items()}
        for key, (until, task) in list(self._running.items()):
            if rounds.get(key) != until:
                task.cancel()
                del self._running[key]
        for key in [k for k, r in self.results.items() if rounds.get(k) != r.until]:
            del self.results[key]
        for key, check in due.items():
            if key not in self._running:
                work = self._run(check) if isinstance(check, CarChecks) else self._soak(check)
                task = asyncio.create_task(work, name=f"verify {key[1]}")
                self._running[key] = (rounds[key], task)

    async def close(self) -> None:
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = serving.session()
        return self._session

    async def _run(self, check: CarChecks) -> None:
        verdicts: list[Verdict] = []

        def publish(finished: bool) -> None:
            self.results[check.key] = CheckResults(check.until, tuple(verdicts), finished)
            self.found()

        try:
            for verdict in await self._requests(check):
                verdicts.append(verdict)
                if not verdict.passed:
                    log.info("train %s: %s", check.train, verdict.message)
                    publish(True)
                    return
            publish(False)
            verdicts += await self._metrics(check)
            publish(True)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug: say so, and fail the car rather than wait forever
            log.exception("verification checks of %s in train %s", check.flavor, check.train)
            verdicts.append(
                _could_not_run("check", "checks", f"car {check.flavor}: its checks", error)
            )
            publish(True)

    async def _soak(self, soak: ShadowSoak) -> None:
        """Compare the shadow with its primary, and publish the verdict whatever happens: the
        train waits for it before the shadow gets live traffic."""
        try:
            verdict = await self._compare(soak)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug: say so, and take the car out rather than wait
            log.exception("shadow comparison of %s in train %s", soak.flavor, soak.train)
            what = f"car {soak.flavor}: the comparison of its shadow with its primary"
            verdict = _could_not_run(SHADOW, soak.flavor, what, error)
        log.info("train %s: %s", soak.train, verdict.message)
        self.results[soak.key] = CheckResults(soak.ready_at, (verdict,), True)
        self.found()

    async def _compare(self, soak: ShadowSoak) -> Verdict:
        """Compare the shadow's error ratio and latency with the primary's over the soak."""
        rules = self.settings.verification.shadow
        url = self.settings.verification.prometheus_url
        timeout = self.settings.verification.request_timeout.total_seconds()
        sides = []
        for deployment in (soak.primary, soak.shadow):
            samples: list[list[Sample] | str] = []
            for template in (rules.error_ratio_query, rules.latency_query):
                if url is None:
                    samples.append("the settings name no Prometheus (verification.prometheusUrl)")
                    continue
                query = soak.query(template, deployment)
                now = datetime.now(UTC)
                samples.append(await prometheus.query(self._http(), str(url), query, now, timeout))
            sides.append(side_numbers(*samples))
        return judge_shadow(soak, sides[0], sides[1], self.settings)

    async def _requests(self, check: CarChecks) -> list[Verdict]:
        """The predictions, one after the other, then the load check: the verdicts so far,
        the last one failed when one did."""
        verification = check.verification
        unsupported = not_verifiable(check)
        if unsupported is not None:
            return [unsupported]
        timeout = self.settings.verification.request_timeout.total_seconds()
        verdicts: list[Verdict] = []
        sent: list[tuple[str, str]] = []
        for prediction in verification.predictions or []:
            body = await self._body(check, prediction)
            if isinstance(body, Verdict):
                return [*verdicts, body]
            url = check.base_url + inference_path(check.protocol or "v2", check.model, prediction)
            answer = await serving.post_json(self._http(), url, body, timeout)
            verdicts.append(judge_prediction(check, prediction, answer))
            if not verdicts[-1].passed:
                return verdicts
            sent.append((url, body))
        if verification.load is not None and sent:
            count, interval = load_plan(verification.load)
            answers = await serving.fixed_rate(self._http(), sent, count, interval, timeout)
            expected = [p.expect.status for p in verification.predictions or []]
            verdicts.append(judge_load(check, answers, expected))
        return verdicts

    async def _body(self, check: CarChecks, prediction: Prediction) -> str | Verdict:
        """The prediction's body: inline, or from its ConfigMap key in the control namespace."""
        if prediction.body is not None:
            return prediction.body
        ref = prediction.body_from
        assert ref is not None  # the CRD requires one of the two
        namespace = self.settings.namespaces.control
        path = f"/api/v1/namespaces/{namespace}/configmaps/{ref.name}"
        try:
            config_map = await self._get_patiently(path, check.until)
        except rest.FAILURES as error:
            why = rest.describe(error)
            if rest.retryable(error):
                why += " (asked again until the verification time was up)"
        else:
            body = (config_map.get("data") or {}).get(ref.key)
            if body is not None:
                return str(body)
            why = f"ConfigMap {ref.name} has no key {ref.key}"
        return Verdict(
            PREDICTION,
            prediction.name,
            False,
            PREDICTION_FAILED,
            f"prediction {prediction.name} (car {check.flavor}): cannot read its body from "
            f"ConfigMap {namespace}/{ref.name} key {ref.key}: {why}",
        )

    async def _get_patiently(self, path: str, until: datetime) -> dict[str, Any]:
        """GET `path`, asked again while the API server is busy, broken or unreachable, until
        `until` (see RETRY_FOR); raises what the last try failed with."""
        give_up = max(until, datetime.now(UTC) + RETRY_FOR)
        delay, tries = 0.0, 0
        while True:
            tries += 1
            try:
                return await rest.request(self.api, "GET", path)
            except rest.FAILURES as error:
                late = datetime.now(UTC) >= give_up and tries >= MIN_TRIES
                if late or not rest.retryable(error):
                    raise
                delay = min(MAX_RETRY_DELAY, delay * 2 or 0.5)
                log.warning("GET %s: %s; again in %.1fs", path, rest.describe(error), delay)
                await asyncio.sleep(delay)

    async def _metrics(self, check: CarChecks) -> list[Verdict]:
        """The metric queries, evaluated once the verification time is up, over all of it."""
        metrics = check.verification.metrics or []
        if not metrics:
            return []
        wait = (check.until - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        url = self.settings.verification.prometheus_url
        timeout = self.settings.verification.request_timeout.total_seconds()
        verdicts = []
        for metric in metrics:
            samples: list[Sample] | str = (
                "no Prometheus to ask: the settings name none (verification.prometheusUrl)"
            )
            if url is not None:
                query = metric_query(check, metric.query)
                at = check.until
                samples = await prometheus.query(self._http(), str(url), query, at, timeout)
            verdicts.append(judge_metric(check, metric, samples, self.settings))
            if not verdicts[-1].passed:
                break
        return verdicts
