"""Questions to the API server about people: may this user approve this train?"""

from kubernetes_asyncio import client

from adroit.api import names

ACCESS_TIMEOUT = 5.0  # seconds


async def may_approve(
    api: client.ApiClient, user: str, groups: list[str], uid: str | None, namespace: str, train: str
) -> bool:
    """A SubjectAccessReview for the custom verb `approve` on this train."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            **({"uid": uid} if uid else {}),
            "resourceAttributes": {
                "namespace": namespace,
                "verb": "approve",
                "group": names.GROUP,
                "resource": "trains",
                "name": train,
            },
        },
    }
    # Well within the admission webhook's own 10 s: a slow answer is a clear refusal, not a
    # webhook timeout that kubectl reports without a word of why.
    answer = await client.AuthorizationV1Api(api).create_subject_access_review(
        review,  # type: ignore[arg-type]
        _request_timeout=ACCESS_TIMEOUT,
    )
    return bool(answer.status and answer.status.allowed)
