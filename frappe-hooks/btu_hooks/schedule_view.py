"""What the BTU Task Schedule form shows of btu-daemon's state (pure: no Frappe, no I/O).

Turns the answers of btu_client (`upcoming`, `history`, `status`, and the operator actions)
into rows of display strings for the form's read-only section and into one-line messages; the
form's script only puts them into a table. Datetimes from btu_client are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any

# History entries written before issue 9 have no outcome: they were enqueued.
DEFAULT_OUTCOME = "enqueued"


def fmt_local(value: Any) -> str:
    """`2026-12-02 09:30 -05:00` (the schedule's wall time and its UTC offset)."""
    dt = as_datetime(value)
    if dt is None:
        return str(value or "")
    return dt.strftime("%Y-%m-%d %H:%M ") + _offset(dt)


def fmt_utc(value: Any) -> str:
    """`2026-12-02 14:30:00Z`."""
    dt = as_datetime(value)
    if dt is None:
        return str(value or "")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%SZ")


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _offset(dt: datetime) -> str:
    off = dt.utcoffset()
    if off is None:
        return ""
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def fmt_lateness(ms: Any) -> str:
    """`312 ms`, `4.2 s`, `3 min 05 s`; empty when there is none (a skipped run)."""
    if ms is None or ms == "":
        return ""
    try:
        ms = int(ms)
    except (TypeError, ValueError):
        return str(ms)
    if abs(ms) < 1000:
        return f"{ms} ms"
    if abs(ms) < 60_000:
        return f"{ms / 1000:.1f} s"
    secs = ms // 1000
    return f"{secs // 60} min {secs % 60:02d} s"


def upcoming_rows(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """btu_client.upcoming → rows {local, utc, note} (note: `paused` / `skipped` when the run
    will not be enqueued)."""
    rows = []
    for run in runs:
        note = "paused" if run.get("paused") else "skipped" if run.get("skipped") else ""
        rows.append({"local": fmt_local(run.get("local")), "utc": fmt_utc(run.get("utc")), "note": note})
    return rows


def history_rows(entries: Iterable[Mapping[str, Any]], zone: tzinfo | None = None) -> list[dict[str, Any]]:
    """btu_client.history → rows {due_local, due_utc, outcome, lateness, job_id}, newest first
    as the daemon answers; `due_local` in `zone` (the site's time zone)."""
    rows = []
    for entry in entries:
        due = entry.get("due")
        due_dt = as_datetime(due)
        local = entry.get("local") or (due_dt.astimezone(zone) if due_dt is not None and zone is not None else due_dt)
        rows.append({
            "due_local": fmt_local(local) if local is not None else "",
            "due_utc": fmt_utc(due),
            "outcome": str(entry.get("outcome") or DEFAULT_OUTCOME),
            "lateness": fmt_lateness(entry.get("lateness_ms")),
            "job_id": str(entry.get("job_id") or ""),
        })
    return rows


def pause_of(status: Mapping[str, Any], site: str | None, schedule: str) -> dict[str, Any] | None:
    """The schedule's pause from btu_client.status (each site lists its paused schedules: Pause
    dicts with schedule, until, note, at), as {until_utc, note, at_utc}; None when not paused."""
    for site_status in status.get("sites") or []:
        if site is not None and site_status.get("site") != site:
            continue
        for pause in site_status.get("paused") or []:
            if pause.get("schedule") == schedule:
                return {"until_utc": fmt_utc(pause.get("until")) if pause.get("until") else "",
                        "note": str(pause.get("note") or ""), "at_utc": fmt_utc(pause.get("at"))}
    return None


def describe_pause(reply: Mapping[str, Any]) -> str:
    """btu_client.pause's answer (a Paused dict: site, schedule, until, note, at, uid, pid)."""
    until = reply.get("until")
    text = f"{reply.get('schedule')} is paused " + (f"until {fmt_utc(until)}" if until else "until resumed") + "."
    return text + (f" Note: {reply['note']}" if reply.get("note") else "")


def describe_resume(reply: Mapping[str, Any]) -> str:
    if reply.get("was_paused"):
        return f"{reply.get('schedule')} is resumed: its next runs are enqueued again (paused runs are not replayed)."
    return f"{reply.get('schedule')} was not paused: nothing changed."


def describe_skip(reply: Mapping[str, Any]) -> str:
    added = [fmt_local(r.get("local")) for r in reply.get("added") or []]
    pending = len(reply.get("pending") or [])
    return (f"{reply.get('schedule')}: skipping {', '.join(added) if added else 'no further run'}"
            f" ({pending} run{'s' if pending != 1 else ''} skipped in all).")


def describe_run_now(reply: Mapping[str, Any]) -> str:
    return f"{reply.get('schedule')}: job {reply.get('job_id')} enqueued on queue {reply.get('queue')}."


def backfill_rows(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"local": fmt_local(r.get("local")), "utc": fmt_utc(r.get("due")), "status": str(r.get("status") or ""),
             "job_id": str(r.get("job_id") or "")} for r in runs]


def describe_backfill(schedule: str, runs: Sequence[Mapping[str, Any]], dry_run: bool) -> str:
    """btu_client.backfill's answer (BackfillRun dicts, oldest first) in one line."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[str(run.get("status"))] = counts.get(str(run.get("status")), 0) + 1
    parts = [f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items())]
    what = "Dry run" if dry_run else "Backfill"
    return f"{what} of {schedule}: {len(runs)} planned run{'s' if len(runs) != 1 else ''}" + (
        f" ({', '.join(parts)})." if parts else ".")
