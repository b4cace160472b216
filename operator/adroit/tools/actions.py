"""The annotations people set on a Train, and what to do when the API server refuses one."""

from adroit.api import names
from adroit.tools.client import ApiError

# `kubectl adroit ACTION TRAIN` and the dashboard's buttons write these, set to "true":
# the same write as `kubectl annotate`, so the admission webhook checks and records it.
ACTIONS = {
    "approve": names.APPROVED,
    "abort": names.ABORT,
    "override-window": names.OVERRIDE_WINDOW,
}


def annotation_patch(action: str) -> dict[str, object]:
    """The merge patch that sets the action's annotation."""
    return {"metadata": {"annotations": {ACTIONS[action]: "true"}}}


def refusal_hint(action: str, error: ApiError, namespace: str, train: str) -> str:
    """What to do after a refusal whose message may not say it: RBAC names only what was
    forbidden (the webhook's own messages already say what to do)."""
    if error.status == 403 and "cannot patch resource" in error.message:
        needs = "patch trains" + ("" if action == "abort" else " and the verb `approve` on trains")
        return (
            f"To {action} a train you need to {needs} in namespace {namespace} (the ClusterRole "
            f"adroit-approver bound to you there); ask an approver to run: "
            f"kubectl adroit {action} {train} -n {namespace}"
        )
    return ""
