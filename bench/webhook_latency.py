"""What the admission webhook adds to a Train update, measured through the API server.

    make bench

A train waits in AwaitingApproval; alice sends the approval N times as a
server-side dry run (admission runs, nothing is stored, the train never
moves), first with the operator's webhook configured, then with it removed.
The difference of the medians is the webhook's cost per approval (TLS to the
operator, the SubjectAccessReview, signing).
"""

import asyncio
import os
import statistics
import sys
import time

from kubernetes_asyncio import client, config
from scratch import kubectl, operator_in_scratch

N = int(os.environ.get("ROUNDS_WEBHOOK", "60"))


async def approvals(namespace: str, train: str, context: str | None) -> list[float]:
    api = await config.new_client_from_config(
        config_file=os.environ.get("KUBECONFIG"), context=context
    )
    custom = client.CustomObjectsApi(api)
    body = {"metadata": {"annotations": {"adroit.dev/approved": "true"}}}
    took = []
    try:
        for _ in range(N):
            start = time.perf_counter()
            await custom.patch_namespaced_custom_object(
                "adroit.dev",
                "v1alpha1",
                namespace,
                "trains",
                train,
                body,
                dry_run="All",
                _content_type="application/merge-patch+json",
            )
            took.append((time.perf_counter() - start) * 1000)
    finally:
        await api.close()
    return took


def main() -> int:
    contexts = kubectl("config", "get-contexts", "-o", "name").split()
    context = "alice" if "alice" in contexts else None
    with operator_in_scratch(admission_port=19443) as scratch:
        scratch.apply()
        train = scratch.new_train(set())
        scratch.wait_phase(train, "AwaitingApproval")
        name = train.split("/")[-1]
        with_hook = asyncio.run(approvals(scratch.ns, name, context))
        kubectl("delete", "mutatingwebhookconfiguration", f"adroit-{scratch.ns}")
        time.sleep(1)
        without = asyncio.run(approvals(scratch.ns, name, context))

    def line(label: str, values: list[float]) -> str:
        p90 = statistics.quantiles(values, n=10)[-1]
        return f"  {label:32s} median {statistics.median(values):6.1f} ms   p90 {p90:6.1f} ms"

    print(f"approval of a Train (server-side dry run), {N} requests each, as {context or 'admin'}:")
    print(line("through the admission webhook", with_hook))
    print(line("without it", without))
    added = statistics.median(with_hook) - statistics.median(without)
    print(f"  {'added by the webhook':32s} median {added:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
