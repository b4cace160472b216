"""Names that users, manifests and tests depend on (SPEC section 1)."""

from typing import Final

GROUP: Final = "adroit.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "adroit"

FIELD_MANAGER: Final = "adroit"
FINALIZER: Final = "adroit.dev/finalizer"

# Annotations people set on a Train.
APPROVED: Final = "adroit.dev/approved"
ABORT: Final = "adroit.dev/abort"
OVERRIDE_WINDOW: Final = "adroit.dev/override-window"

# Signed records the admission webhook writes beside each guarded annotation,
# and who made a change or created a train.
RECORDS: Final = {
    APPROVED: "adroit.dev/approved-record",
    OVERRIDE_WINDOW: "adroit.dev/override-window-record",
    ABORT: "adroit.dev/abort-record",
}
CHANGED_BY: Final = "adroit.dev/changed-by"
# Every change of a Flavor's spec, [[revision, author], ...]: written by the webhook alone.
AUTHORS: Final = "adroit.dev/authors"
# The commit author, written on a Flavor by a trusted GitOps writer (approval.trustedAuthors).
AUTHOR: Final = "adroit.dev/author"
CREATED_BY: Final = "adroit.dev/created-by"

# Labels on everything the operator creates.
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "adroit"
FLAVOR_LABEL: Final = "adroit.dev/flavor"
STAGE_LABEL: Final = "adroit.dev/stage"
ROLE_LABEL: Final = "adroit.dev/role"

# Longest Flavor name: its Deployments are named FLAVOR-HASH (a 10-character
# hash) and must stay valid DNS-1035 labels of at most 63 characters.
MAX_FLAVOR_NAME: Final = 52
