"""Instant queries to Prometheus's HTTP API."""

from datetime import datetime

import aiohttp

from adroit.plan.verification import Sample, samples_of


async def query(
    session: aiohttp.ClientSession, base_url: str, promql: str, at: datetime, within: float
) -> list[Sample] | str:
    """The samples of `promql` evaluated at `at`, or why there are none (for a person)."""
    url = base_url.rstrip("/") + "/api/v1/query"
    params = {"query": promql, "time": f"{at.timestamp():.3f}"}
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=within)
        ) as response:
            # Bytes that are not text are shown as such, not raised (plan judges the answer).
            return samples_of(response.status, await response.text(errors="replace"))
    except (aiohttp.ClientError, TimeoutError) as error:
        why = str(error) or type(error).__name__
        return samples_of(None, f"{base_url}: {why}")
