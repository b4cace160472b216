"""An object put back again and again is contested: something else keeps changing it.

Drift is put back at once. When another writer (an autoscaler on the replicas,
another controller, a GitOps tool, a script) keeps changing the same object,
each repair brings its answer and the two would write in turn as fast as the
API server allows. After `LIMIT` repairs of one object within `WINDOW`
seconds, the next waits until the oldest of them is `WINDOW` old: at most
`LIMIT` repairs a minute, and the flavor says why it is not Ready.
"""

from collections import deque
from dataclasses import dataclass, field

from adroit.plan.stages import Stage

LIMIT = 5  # repairs of one object ...
WINDOW = 60.0  # ... within this many seconds make it contested

Key = tuple[str, Stage, str, str]  # flavor, stage, kind, name


@dataclass
class Contests:
    """The times (monotonic seconds) of each object's last `LIMIT` repairs."""

    times: dict[Key, deque[float]] = field(default_factory=dict)

    def _full(self, key: Key, now: float) -> bool:
        times = self.times.get(key)
        return times is not None and len(times) == LIMIT and now - times[0] < WINDOW

    def wait(self, key: Key, now: float) -> float | None:
        """Seconds until this object may be put back again (None: now)."""
        return WINDOW - (now - self.times[key][0]) if self._full(key, now) else None

    def put_back(self, keys: list[Key], now: float) -> None:
        """These objects were put back (a write the API server refused does not count)."""
        self._forget(now)
        for key in keys:
            self.times.setdefault(key, deque(maxlen=LIMIT)).append(now)

    def contested(self, flavor: str, stage: Stage, now: float) -> tuple[str, float] | None:
        """Why the flavor's objects in `stage` are contested, if they are, and for how many
        more seconds (unless they are put back again meanwhile)."""
        full = [k for k in self.times if k[:2] == (flavor, stage) and self._full(k, now)]
        if not full:
            return None
        objects = ", ".join(f"{kind} {name}" for _, _, kind, name in full)
        why = (
            f"{objects} in {stage} was put back {LIMIT} times within {WINDOW:.0f} s: "
            "something else keeps changing it (an autoscaler, another controller, a GitOps "
            "tool, a script). The operator puts it back at most "
            f"{LIMIT} times in {WINDOW:.0f} s meanwhile. Stop the other writer, or change the "
            "Flavor instead"
        )
        return why, max(WINDOW - (now - self.times[k][0]) for k in full)

    def _forget(self, now: float) -> None:
        """Drop what no longer counts (objects not repaired within the window)."""
        for key in [k for k, t in self.times.items() if now - t[-1] >= WINDOW]:
            del self.times[key]
