"""Every metric the operator exports, in one place, so dashboards can be checked against it.

The controller-runtime names (reconcile counts and times, work queue depth,
leader status) keep the dashboards and alerts written for Go operators working;
the `adroit_*` ones tell the trains' story. `adroit.handlers.serving` serves
them on /metrics.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller and result.",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller.",
    ["controller"],
    registry=REGISTRY,
)
WORKQUEUE_DEPTH = Gauge(
    "workqueue_depth", "Current depth of the work queue.", ["name"], registry=REGISTRY
)
LEADER = Gauge(
    "leader_election_master_status",
    "1 while this process holds the leader Lease, else 0.",
    ["name"],
    registry=REGISTRY,
)
TRAIN_PHASE = Gauge(
    "adroit_train_phase",
    "1 for the phase each kept train is in, 0 for the others it has been in.",
    ["train", "phase"],
    registry=REGISTRY,
)
TRAIN_TRANSITIONS = Counter(
    "adroit_train_transitions_total",
    "Phase transitions of trains, by the phase entered.",
    ["phase"],
    registry=REGISTRY,
)
APPROVALS = Counter(
    "adroit_approvals_total",
    "Approvals and window overrides asked of the webhook, by result (signed or refused).",
    ["result"],
    registry=REGISTRY,
)
FLAVORS = Gauge(
    "adroit_flavors",
    "Flavors by state: ready, pending (a change waits or rides a train), unreadable.",
    ["state"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "adroit_api_requests_total",
    "Requests to the Kubernetes API server, by verb and HTTP status code.",
    ["verb", "code"],
    registry=REGISTRY,
)
ADMISSION_TIME = Histogram(
    "adroit_admission_duration_seconds",
    "Time to answer one AdmissionReview, by webhook.",
    ["webhook"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
NOTIFICATION_FAILURES = Counter(
    "adroit_notification_failures_total",
    "Notifications the webhook never took, after every retry.",
    registry=REGISTRY,
)
