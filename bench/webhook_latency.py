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
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from kopf.testing import KopfRunner
from kubernetes_asyncio import client, config

N = int(os.environ.get("ROUNDS_WEBHOOK", "60"))
REPO = Path(__file__).resolve().parents[1]


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, check=True, capture_output=True, text=True
    )
    return done.stdout


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
    ns = f"adroit-bench-{uuid.uuid4().hex[:5]}"
    names = {"control": ns, "staging": f"{ns}-staging", "production": f"{ns}-production"}
    for name in names.values():
        kubectl("create", "namespace", name)
    settings = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())
    settings["namespaces"] = names
    settings["admission"] = {"port": 19443}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "settings.yaml")
        path.write_text(yaml.safe_dump(settings))
        os.environ["ADROIT_SETTINGS"] = str(path)
        sample = yaml.safe_load((REPO / "deploy" / "samples" / "ads-pctr-v5.yaml").read_text())
        sample["metadata"]["namespace"] = ns
        try:
            with KopfRunner(["run", "--standalone", "--namespace", ns, "-m", "adroit.handlers"]):
                while (
                    kubectl(
                        "get",
                        "mutatingwebhookconfiguration",
                        f"adroit-{ns}",
                        "-o",
                        "name",
                        "--ignore-not-found",
                    )
                    == ""
                ):
                    time.sleep(0.2)
                kubectl("apply", "-f", "-", stdin=yaml.safe_dump(sample))
                while not (train := kubectl("get", "trains", "-n", ns, "-o", "name").strip()):
                    time.sleep(0.2)
                train = train.split("/")[-1]
                kubectl(
                    "wait",
                    "-n",
                    ns,
                    f"train/{train}",
                    "--for=jsonpath={.status.phase}=AwaitingApproval",
                    "--timeout=120s",
                )
                with_hook = asyncio.run(approvals(ns, train, context))
                kubectl("delete", "mutatingwebhookconfiguration", f"adroit-{ns}")
                time.sleep(1)
                without = asyncio.run(approvals(ns, train, context))
        finally:
            kubectl(
                "patch",
                "-n",
                ns,
                "flavor",
                "ads-pctr-v5",
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
            )
            kubectl("delete", "namespace", *names.values(), "--wait=false")
            kubectl("delete", "mutatingwebhookconfiguration", f"adroit-{ns}", "--ignore-not-found")

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
