"""Deploy windows: when trains may depart and promotions may start.

All arithmetic is in the window's IANA time zone, so daylight saving moves the
window with local time; instants in and out are timezone-aware (UTC or any).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from adroit.api.settings import DeployWindow

_HORIZON_DAYS = 400  # a window that never opens within a year is reported as never


@dataclass(frozen=True)
class WindowState:
    open: bool
    closes_at: datetime | None  # while open: when it closes (None: not within the horizon)
    opens_at: datetime | None  # while closed: when it next opens (None: not within the horizon)
    why_closed: str = ""


def _frozen(window: DeployWindow, day: date) -> str | None:
    for freeze in window.freezes:
        if freeze.start <= day <= freeze.end:
            return freeze.reason or f"freeze {freeze.start} to {freeze.end}"
    return None


def _local(day: date, at: time, window: DeployWindow) -> datetime:
    """The instant, in UTC, of a wall-clock time on a local day.

    A time that daylight saving skips maps to the instant after the gap; a time
    it repeats, to its first occurrence. UTC, because Python never calls an
    instant in a repeated hour equal to one in another zone (PEP 495).
    """
    naive = datetime.combine(day, at)
    return naive.replace(tzinfo=window.zone).astimezone(UTC)


def _intervals(window: DeployWindow, first: date, days: int) -> list[tuple[datetime, datetime]]:
    """Open intervals of the window, day by day from `first`, merged where they touch."""
    spans: list[tuple[datetime, datetime]] = []
    weekdays = {d.number for d in window.days}
    for offset in range(days):
        day = first + timedelta(days=offset)
        if _frozen(window, day):
            continue
        if window.always_open:
            start, end = (
                _local(day, time(0), window),
                _local(day + timedelta(days=1), time(0), window),
            )
        elif day.weekday() in weekdays:
            start, end = _local(day, window.start, window), _local(day, window.end, window)
        else:
            continue
        if spans and spans[-1][1] >= start:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def window_state(window: DeployWindow, now: datetime) -> WindowState:
    """Whether the window is open at `now`, and when that changes."""
    first = now.astimezone(window.zone).date() - timedelta(days=1)
    horizon = _local(first + timedelta(days=_HORIZON_DAYS), time(0), window)
    for start, end in _intervals(window, first, _HORIZON_DAYS):
        if start <= now < end:
            return WindowState(open=True, closes_at=None if end >= horizon else end, opens_at=None)
        if now < start:
            return WindowState(False, None, start, _why_closed(window, now))
    return WindowState(False, None, None, _why_closed(window, now))


def _why_closed(window: DeployWindow, now: datetime) -> str:
    local = now.astimezone(window.zone)
    freeze = _frozen(window, local.date())
    if freeze:
        return f"deploy freeze: {freeze}"
    days = ", ".join(d.value for d in window.days)
    return (
        f"outside deploy hours ({days} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone})"
    )


def can_start_promotion(window: DeployWindow, now: datetime, lead: timedelta) -> bool:
    """A promotion starts only if it can finish, `lead` later, before the window closes."""
    state = window_state(window, now)
    return state.open and (state.closes_at is None or now + lead <= state.closes_at)


def next_promotion_start(window: DeployWindow, now: datetime, lead: timedelta) -> datetime | None:
    """The first instant from `now` on at which a promotion of length `lead` may start."""
    today = now.astimezone(window.zone).date()
    for start, end in _intervals(window, today - timedelta(days=1), _HORIZON_DAYS):
        if end - start < lead or end - lead < now:
            continue
        return max(start, now)
    return None
