"""The plugin's text output: the tracks, tables of trains and flavors, a train's timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the commands that need them, after their requests are sent
    from adroit.plan.tracks import Tracks, TrainLine, Whereabouts
    from adroit.plan.world import FlavorView

PENDING_SHOWN = 15

_COLOURS = {
    "Deployed": "32",
    "Shipped": "32",
    "Verified": "32",
    "AwaitingApproval": "33;1",
    "Queued": "36",
    "Staging": "36",
    "Verifying": "36",
    "Promoting": "36",
    "Applying": "36",
    "RolledBack": "31",
    "Aborted": "31",
    "Failed": "31",
    "Reverted": "31",
    "open": "32",
    "closed": "33",
}


class Paint:
    """ANSI colours, only when the output is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str | None = None) -> str:
        code = code or _COLOURS.get(text)
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code else text

    def bold(self, text: str) -> str:
        return self(text, "1")

    def dim(self, text: str) -> str:
        return self(text, "2")


def ago(moment: datetime | None, now: datetime) -> str:
    """'3m ago', 'in 2h5m': a person's sense of a time."""
    if moment is None:
        return "-"
    seconds = int((now - moment).total_seconds())
    later, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds}s"
    elif seconds < 3600:
        text = f"{seconds // 60}m"
    elif seconds < 86400:
        text = f"{seconds // 3600}h{seconds % 3600 // 60}m".removesuffix("0m")
    else:
        text = f"{seconds // 86400}d{seconds % 86400 // 3600}h".removesuffix("0h")
    return f"in {text}" if later else f"{text} ago"


def clock(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _counts(counts: Mapping[str, int], paint: Paint) -> str:
    return ", ".join(f"{n} {paint(state)}" for state, n in sorted(counts.items()))


def _train_block(line: TrainLine, now: datetime, paint: Paint) -> list[str]:
    out = [
        f"{paint.bold(line.name)}  {paint(line.phase)} since {clock(line.since)} "
        f"({ago(line.since, now)})",
        f"  engineer {line.engineer}, {line.car_count} car(s); "
        f"staging: {_counts(line.staging, paint)}; production: {_counts(line.production, paint)}",
    ]
    if line.message:
        out.append(f"  {line.reason}: {line.message}")
    if line.until is not None:
        out.append(f"  next: {clock(line.until)} ({ago(line.until, now)})")
    if line.phase == "AwaitingApproval":
        who = (
            f"anyone with the verb approve on trains but {', '.join(line.may_not_approve)}"
            if line.may_not_approve
            else "anyone with the verb approve on trains"
        )
        out.append(f"  may approve: {who}")
        out.append(f"  approve: kubectl adroit approve {line.name}")
    if line.requested:
        out.append(f"  annotations set: {', '.join(line.requested)}")
    return out


def status_text(tracks: Tracks, paint: Paint) -> str:
    now, w = tracks.now, tracks.window
    lines = []
    if w.open is None:
        window = "unknown (pass --settings FILE, or let the user read ConfigMap adroit-settings)"
    elif w.open:
        window = f"{paint('open')}, closes " + (
            f"{clock(w.closes_at)} ({ago(w.closes_at, now)})" if w.closes_at else "never"
        )
    else:
        window = f"{paint('closed')} ({w.why_closed}), opens " + (
            f"{clock(w.opens_at)} ({ago(w.opens_at, now)})" if w.opens_at else "not within a year"
        )
    lines.append(f"{paint.bold('Deploy window')}  {window}")
    lines.append("")
    lines.append(paint.bold("On the tracks"))
    if tracks.on_tracks is None:
        lines.append("  no train")
    else:
        lines += ["  " + x for x in _train_block(tracks.on_tracks, now, paint)]
    lines.append("")
    lines.append(paint.bold(f"Queue ({len(tracks.queue)})"))
    for line in tracks.queue:
        lines.append(
            f"  {line.position}. {line.name}  {line.car_count} car(s), engineer "
            f"{line.engineer}, created {ago(line.created_at, now)}: {line.message or 'waits'}"
        )
    lines.append("")
    lines.append(paint.bold(f"Pending changes ({len(tracks.pending)} of {tracks.flavor_count})"))
    shown = tracks.pending[:PENDING_SHOWN]
    width = max((len(c.flavor) for c in shown), default=0)
    for change in shown:
        lines.append(f"  {change.flavor.ljust(width)}  {paint(change.reason)}: {change.message}")
    if len(tracks.pending) > PENDING_SHOWN:
        lines.append(f"  ... and {len(tracks.pending) - PENDING_SHOWN} more (-o json lists all)")
    lines.append("")
    lines.append(paint.bold("Recent trains"))
    for line in tracks.recent:
        lines.append(
            f"  {line.name}  {paint(line.phase)} {ago(line.since, now)}, "
            f"{line.car_count} car(s), engineer {line.engineer}"
        )
    if not tracks.recent:
        lines.append("  none")
    return "\n".join(lines)


def table(rows: Sequence[Sequence[str]], paint: Paint, colour_column: int | None = None) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            padded = cell.ljust(widths[i]) if i < len(row) - 1 else cell
            if n and i == colour_column:
                padded = paint(cell) + padded[len(cell) :]
            cells.append(padded)
        out.append("   ".join(cells).rstrip())
    return "\n".join(out)


def trains_table(lines: Sequence[TrainLine], now: datetime, paint: Paint) -> str:
    rows = [["NAME", "PHASE", "ENGINEER", "CARS", "AGE", "WAITS FOR"]]
    for line in lines:
        waits = "" if line.phase in ("Deployed",) else line.message
        rows.append(
            [
                line.name,
                line.phase,
                line.engineer,
                str(line.car_count),
                ago(line.created_at, now).removesuffix(" ago"),
                waits[:80],
            ]
        )
    return table(rows, paint, colour_column=1)


def flavors_table(views: Sequence[FlavorView], paint: Paint) -> str:
    rows = [["NAME", "OWNER", "REVISION", "STAGING", "PRODUCTION", "PENDING"]]
    for view in views:
        status = view.status
        pending = next((c for c in status.conditions if c.type == "PendingChanges"), None)
        rows.append(
            [
                view.name,
                view.spec.owner,
                status.revision or "-",
                (status.staging.revision if status.staging else None) or "-",
                (status.production.revision if status.production else None) or "-",
                pending.reason if pending and pending.status == "True" else "-",
            ]
        )
    return table(rows, paint)


def describe_text(line: TrainLine, now: datetime, paint: Paint) -> str:
    out = _train_block(line, now, paint)
    out.append("")
    out.append(paint.bold("Cars"))
    rows = [["FLAVOR", "REVISION", "STAGING", "PRODUCTION", "WHY"]]
    for car in line.cars:
        revision = "remove" if car.remove else (car.revision or "-")
        why = f"{car.reason}: {car.message}" if car.message else (car.reason or "")
        rows.append([car.flavor, revision, car.staging, car.production, why])
    out += ["  " + r for r in table(rows, paint).splitlines()]
    out.append("")
    out.append(paint.bold("History"))
    for entry in line.history:
        by = f" (by {entry.by})" if entry.by else ""
        out.append(
            f"  {clock(entry.at)}  {paint(str(entry.phase)):<16}  {entry.reason}{by}"
            + (f": {entry.message}" if entry.message else "")
        )
    if not line.history:
        out.append("  none yet")
    return "\n".join(out)


def why_text(found: Whereabouts, now: datetime, paint: Paint) -> str:
    out = [
        f"{paint.bold(found.flavor)} revision {found.revision}: {paint(found.where)}"
        + (f" since {clock(found.since)} ({ago(found.since, now)})" if found.since else ""),
        f"  {found.message}",
    ]
    if found.trains:
        out.append("")
        out.append(paint.bold("Trains that carried it (newest first)"))
        for line, car in found.trains[:10]:
            what = "remove" if car.remove else car.revision
            out.append(
                f"  {line.name}  {paint(line.phase)}  revision {what}: staging {car.staging}, "
                f"production {car.production}"
                + (f" ({car.reason}: {car.message})" if car.message else "")
            )
    return "\n".join(out)


def dump(data: Any, output: str) -> str:
    if output == "json":
        import json

        return json.dumps(data, indent=2)
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False)).rstrip()
