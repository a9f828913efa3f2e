"""The load harness's figures: what bench/load.py records (`RunStats`), the summary and its
one-line JSON (`summarise`), the Markdown report (`render`) and where it goes
(`write_report`: docs/performance.md between `<!-- load-report:NAME:start -->` and
`<!-- load-report:NAME:end -->`, appended when the markers are missing; PNG plots of
latency and throughput over time in docs/img/)."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INGEST_ROUTES = ("POST /v1/batch", "POST /v1/track", "POST /batch/", "POST /i/v0/e/")
NOT_READS = (
    *INGEST_ROUTES,
    "POST /api/notifications/send",
    "PUT /api/notifications/preferences",
    "GET stream (open)",
)
GOAL_P99_MS = 100.0


@dataclass
class RunStats:
    t0: float
    # (seconds since t0, route, status (0: no answer), milliseconds)
    requests: list[tuple[float, str, int, float]] = field(default_factory=list)
    db_writes: list[tuple[float, str, bool, float]] = field(default_factory=list)
    offered: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    stream_drops: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)
    notify_accepted_api: Counter[str] = field(default_factory=Counter)
    notify_requests_ok: int = 0
    notify_requests_failed: int = 0
    events_refused: int = 0
    background_queued: Counter[str] = field(default_factory=Counter)
    background_skipped: Counter[str] = field(default_factory=Counter)
    faults: list[Any] = field(default_factory=list)
    supervisor: list[str] = field(default_factory=list)  # processes that exited on their own
    full_load_from: float = 0.0
    full_load_to: float = 0.0
    streams_ever: int = 0
    reconciliation: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    profile_svg: str | None = None
    profile_error: str | None = None
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    # chaos runs: where the alerts came from, and what the poller saw (load_alerts)
    alerts_source: dict[str, Any] = field(default_factory=dict)
    alert_timeline: Any = None

    def record(self, t: float, route: str, status: int, ms: float) -> None:
        self.requests.append((t, route, status, ms))

    def record_db(self, t: float, what: str, ok: bool, ms: float) -> None:
        self.db_writes.append((t, what, ok, ms))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def status_class(status: int) -> str:
    return "error" if status == 0 else f"{status // 100}xx"


def summarise(s: RunStats) -> dict[str, Any]:
    """Everything the report shows, as plain data (JSON-able), plus the `json` line."""
    lo, hi = s.full_load_from, s.full_load_to
    seconds = max(hi - lo, 1e-9)
    by_route: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
    for t, route, code, ms in s.requests:
        by_route[route].append((t, code, ms))
    routes = {}
    for route, rows in sorted(by_route.items()):
        full = [r for r in rows if lo <= r[0] <= hi]
        ok_ms = [ms for _, st, ms in full if st and st < 500]
        statuses = Counter(str(st) if st else "no answer" for _, st, _ in rows)
        routes[route] = {
            "offered_per_s": round(len(full) / seconds, 2),
            "achieved_per_s": round(sum(1 for _, st, _ in full if 200 <= st < 300) / seconds, 2),
            "p50_ms": _r(pct(ok_ms, 0.50)),
            "p95_ms": _r(pct(ok_ms, 0.95)),
            "p99_ms": _r(pct(ok_ms, 0.99)),
            "requests": len(rows),
            "statuses": dict(statuses),
        }
    counted = list(s.requests)  # a stream's open is a request too (its 5xx count)
    status = Counter(status_class(st) for _, _, st, _ in counted)
    full_rows = [r for r in counted if lo <= r[0] <= hi]
    ingest = [ms for _, route, st, ms in full_rows if route in INGEST_ROUTES and st and st < 500]
    reads = [ms for _, route, st, ms in full_rows if route not in NOT_READS and st and st < 500]
    # Streams: from 5 s after the ramp (the last fans' streams are still opening at its end).
    after_ramp = [x["sse_open"] for x in s.samples if lo + 5 <= x["t"] <= hi]
    rec = s.reconciliation
    db_writes: dict[str, Any] = {}
    for what in sorted({w for _, w, _, _ in s.db_writes}):
        writes = [(ok, ms) for _, w, ok, ms in s.db_writes if w == what]
        db_writes[what] = {
            "count": len(writes),
            "failed": sum(1 for ok, _ in writes if not ok),
            "p99_ms": _r(pct([ms for ok, ms in writes if ok], 0.99)),
        }
    gen_cpu = [x["gen_cpu"] for x in s.samples if lo <= x["t"] <= hi]
    lag = [x["loop_lag_ms"] for x in s.samples if lo <= x["t"] <= hi]
    procs: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu": 0.0, "rss": 0.0, "n": 0})
    for x in s.samples:
        if lo <= x["t"] <= hi:
            for name, (cpu, rss) in x["procs"].items():
                p = procs[name]
                p["cpu"] += cpu
                p["rss"] = max(p["rss"], rss)
                p["n"] += 1
    per_process = {
        name: {
            "cpu_percent_mean": round(p["cpu"] / max(p["n"], 1), 1),
            "rss_mib_max": round(p["rss"], 1),
        }
        for name, p in sorted(procs.items())
    }
    conns = [x["db_conns"] for x in s.samples if x["db_conns"] is not None]
    loads = [x["load"] for x in s.samples]
    generator_bound = bool(gen_cpu and (pct(gen_cpu, 0.5) or 0) >= 85) or bool(
        lag and (pct(lag, 0.95) or 0) >= 250
    )
    summary: dict[str, Any] = {
        "meta": s.meta,
        "seconds": round(seconds, 1),
        "ramp_s": round(lo, 1),
        "routes": routes,
        "status": {k: status.get(k, 0) for k in ("2xx", "3xx", "4xx", "5xx", "error")},
        "transport_errors": dict(s.transport_errors.most_common(12)),
        "error_examples": s.error_examples,
        "p99_ms": {"ingest": _r(pct(ingest, 0.99)), "reads": _r(pct(reads, 0.99))},
        "p50_ms": {"ingest": _r(pct(ingest, 0.50)), "reads": _r(pct(reads, 0.50))},
        "sse": {
            "open_min": min(after_ramp) if after_ramp else 0,
            "open_max": max((x["sse_open"] for x in s.samples), default=0),
            "opened_total": s.streams_ever,
            "drops": dict(s.stream_drops),
        },
        "lag_s": {
            "sink_p50": _r(pct(rec.get("sink_lags", []), 0.5), 2),
            "sink_p99": _r(pct(rec.get("sink_lags", []), 0.99), 2),
            "stream_p50": _r(pct(rec.get("stream_lags", []), 0.5), 2),
            "stream_p99": _r(pct(rec.get("stream_lags", []), 0.99), 2),
        },
        "reconciliation": {k: v for k, v in rec.items() if k not in ("sink_lags", "stream_lags")},
        "db_writes": db_writes,
        "background": {
            "queued": dict(s.background_queued),
            "already_queued": dict(s.background_skipped),
        },
        "notify_requests": {"ok": s.notify_requests_ok, "failed": s.notify_requests_failed},
        "generator": {
            "cpu_percent_p50": _r(pct(gen_cpu, 0.5)),
            "cpu_percent_max": _r(max(gen_cpu, default=0.0)),
            "loop_lag_ms_p95": _r(pct(lag, 0.95)),
            "bottleneck": generator_bound,
        },
        "processes": per_process,
        "db_connections": {
            "max": max(conns, default=0),
            "mean": _r(sum(conns) / len(conns)) if conns else None,
        },
        "load_avg": {"min": _r(min(loads, default=0.0), 2), "max": _r(max(loads, default=0.0), 2)},
        "faults": [
            fault_summary(f, s, rec, next_at=nxt.at_s if nxt is not None else None)
            for f, nxt in zip(s.faults, [*s.faults[1:], None], strict=False)
        ],
        "supervisor": s.supervisor,
        "alerts": alerts_summary(s),
        "profile": {"svg": s.profile_svg, "error": s.profile_error, "top": s.profile_top},
        "timeline": timeline(s),
    }
    summary["json"] = {
        "users": s.meta.get("users", 0),
        "seconds": round(seconds, 1),
        "sse_open_min": summary["sse"]["open_min"],
        "requests": len(counted),
        "status": {k: status.get(k, 0) for k in ("2xx", "4xx", "5xx")},
        "p99_ms": summary["p99_ms"],
        "events": {"acked": rec.get("acked", 0), "stored": rec.get("stored_of_acked", 0)},
        "notifications": {
            "accepted": rec.get("accepted", 0),
            "delivered": rec.get("delivered", 0),
            "duplicates": rec.get("duplicates", 0),
        },
    }
    return summary


def fault_summary(
    f: Any, s: RunStats, rec: dict[str, Any], next_at: float | None = None
) -> dict[str, Any]:
    """Client-visible errors from the fault until 60 s after its action ended (or the next
    fault, when sooner), and recovery: from the fault to the last failed answer (5xx or
    none) in that window."""
    start, end = f.at_s, (f.done_s or f.at_s) + 60
    if next_at is not None:
        end = min(end, next_at)
    bad = [
        (t, route, st)
        for t, route, st, _ in s.requests
        if start <= t <= end and (st == 0 or st >= 500)
    ]
    bad_db = [t for t, _, ok, _ in s.db_writes if start <= t <= end and not ok]
    last = max([t for t, _, _ in bad] + bad_db, default=None)
    lost_events = [t for t in rec.get("lost_event_ack_times", []) if start - 5 <= t <= end]
    lost_emails = [t for t in rec.get("lost_delivery_created", []) if start - 5 <= t <= end]
    return {
        "name": f.name,
        "at_s": f.at_s,
        "done_s": f.done_s,
        "target": f.target,
        "skipped": f.skipped,
        "notes": f.notes,
        "errors": dict(Counter(status_class(st) if st else "no answer" for _, _, st in bad)),
        "errors_by_route": dict(Counter(route for _, route, _ in bad).most_common(5)),
        "db_write_failures": len(bad_db),
        "recovery_s": None if last is None else round(last - start, 1),
        "lost_events_acked_near": len(lost_events),
        "lost_emails_created_near": len(lost_emails),
        **fault_alerts(f, s, next_at),
    }


def fault_alerts(f: Any, s: RunStats, next_at: float | None) -> dict[str, Any]:
    """The alerts the fault raised (load_alerts.match_fault): from its start to the next
    fault's, or 90 s after its action ended."""
    timeline = s.alert_timeline
    if timeline is None or f.skipped:
        return {"alerts": [], "other_alerts": []}
    from load_alerts import match_fault

    end = (f.done_s or f.at_s) + 90
    if next_at is not None:
        end = min(end, next_at)
    rows, others = match_fault(
        timeline.episodes,
        list(getattr(f, "expect", [])),
        s.t0 + f.at_s,
        s.t0 + end,
        lasted_s=(f.done_s or f.at_s) - f.at_s,
        rule_for=s.alerts_source.get("rule_for", {}),
    )
    return {"alerts": rows, "other_alerts": others}


def alerts_summary(s: RunStats) -> dict[str, Any]:
    """Where the alerts came from; those active before the first fault, and those still
    active at the end (seconds since t0)."""
    out: dict[str, Any] = dict(s.alerts_source)
    timeline = s.alert_timeline
    if timeline is None:
        return out
    first = s.t0 + (s.faults[0].at_s if s.faults else s.full_load_to)

    def row(e: Any) -> dict[str, Any]:
        return {
            "alert": e.name,
            "labels": e.label_text(),
            "pending_s": round(e.began - s.t0, 1),
            "firing_s": None if e.firing_at is None else round(e.firing_at - s.t0, 1),
            "resolved_s": None if e.resolved_at is None else round(e.resolved_at - s.t0, 1),
        }

    out["before_faults"] = [row(e) for e in timeline.episodes if e.began < first - 1]
    out["unresolved"] = [row(e) for e in timeline.episodes if e.resolved_at is None]
    out["polls"] = timeline.polls
    out["poll_errors"] = timeline.poll_errors
    out["last_poll_error"] = timeline.last_error
    return out


def timeline(s: RunStats, step: float = 5.0) -> dict[str, list[Any]]:
    """Per `step` seconds: requests/s by class, p50/p99 of ingest and reads, streams open."""
    buckets: dict[int, list[tuple[str, int, float]]] = defaultdict(list)
    for t, route, status, ms in s.requests:
        if route != "GET stream (open)":
            buckets[int(t // step)].append((route, status, ms))
    out: dict[str, list[Any]] = defaultdict(list)
    for b in range(0, int(max(buckets, default=0)) + 1):
        rows = buckets.get(b, [])
        out["t"].append(b * step)
        out["ok_per_s"].append(round(sum(1 for _, st, _ in rows if 200 <= st < 300) / step, 1))
        out["fail_per_s"].append(
            round(sum(1 for _, st, _ in rows if st == 0 or st >= 500) / step, 1)
        )
        ing = [ms for r, st, ms in rows if r in INGEST_ROUTES and st]
        rd = [ms for r, st, ms in rows if r not in NOT_READS and st]
        out["ingest_p50"].append(pct(ing, 0.5))
        out["ingest_p99"].append(pct(ing, 0.99))
        out["reads_p50"].append(pct(rd, 0.5))
        out["reads_p99"].append(pct(rd, 0.99))
    out["sse_t"] = [x["t"] for x in s.samples]
    out["sse_open"] = [x["sse_open"] for x in s.samples]
    return dict(out)


def top_functions(raw_path: Path, n: int = 12) -> list[tuple[str, float]]:
    """From py-spy's `raw` output (folded stacks: `frame;frame;… count`): the share of
    samples spent in each function itself (the leaf frame), and, marked `in:`, the share
    with each of our own functions (mysetlist/) on the stack; the largest first."""
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    samples = 0
    try:
        lines = raw_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        samples += int(count)
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        leaves[frames[-1][:110]] += int(count)
        for frame in {f for f in frames if "mysetlist/" in f and "cli.py" not in f}:
            ours["in: " + frame[:106]] += int(count)
    if not samples:
        return []
    top = leaves.most_common(n) + ours.most_common(n)
    return [(name, round(100 * c / samples, 1)) for name, c in top]


# -- plots and Markdown --------------------------------------------------------------------


def plot(summary: dict[str, Any], img_dir: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = summary["timeline"]
    img_dir.mkdir(parents=True, exist_ok=True)
    files = []
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for key, label in (
        ("ingest_p50", "ingest p50"),
        ("ingest_p99", "ingest p99"),
        ("reads_p50", "reads p50"),
        ("reads_p99", "reads p99"),
    ):
        ax.plot(tl["t"], [math.nan if v is None else v for v in tl[key]], label=label)
    ax.axhline(GOAL_P99_MS, color="grey", linestyle=":", label="goal p99 100 ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("ms (log)")
    _mark(ax, summary)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"load {name}: latency per 5 s")
    fig.tight_layout()
    fig.savefig(img_dir / f"load-{name}-latency.png", dpi=90)
    plt.close(fig)
    files.append(f"load-{name}-latency.png")
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(tl["t"], tl["ok_per_s"], label="2xx/s")
    ax.plot(tl["t"], tl["fail_per_s"], label="5xx + no answer /s", color="red")
    ax2 = ax.twinx()
    ax2.plot(tl["sse_t"], tl["sse_open"], label="streams open", color="green", alpha=0.6)
    ax2.set_ylabel("streams open")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("requests/s")
    _mark(ax, summary)
    ax.legend(fontsize=7, loc="upper left")
    ax2.legend(fontsize=7, loc="upper right")
    ax.set_title(f"load {name}: throughput per 5 s")
    fig.tight_layout()
    fig.savefig(img_dir / f"load-{name}-throughput.png", dpi=90)
    plt.close(fig)
    files.append(f"load-{name}-throughput.png")
    return files


def _mark(ax: Any, summary: dict[str, Any]) -> None:
    ax.axvline(summary["ramp_s"], color="grey", linewidth=0.8)
    for f in summary["faults"]:
        ax.axvline(f["at_s"], color="red", linewidth=0.8, linestyle="--")
        ax.text(f["at_s"], ax.get_ylim()[1], f["name"], fontsize=6, rotation=90, va="top")


def _ms(x: Any) -> str:
    return "-" if x is None else f"{x:g}"


def render(summary: dict[str, Any], name: str, img_prefix: str | None = "img/") -> str:
    m, j, rec = summary["meta"], summary["json"], summary["reconciliation"]
    gen = summary["generator"]
    out = [
        f"### Load run `{name}`: {m.get('users')} fans, {summary['seconds']:g} s at full load "
        f"({m.get('started_utc', '')})",
        "",
    ]
    out.append(
        f"Server: {m.get('api')} on {m.get('servers')} servers; {m.get('cores')} cores shared "
        f"with the generator and other work; load average {summary['load_avg']['min']}-"
        f"{summary['load_avg']['max']} during the run (before: "
        f"{_load(m.get('load_before'))}). Ramp {summary['ramp_s']:g} s; think time mean "
        f"{m.get('think_s')} s; SDK batch every {m.get('batch_every_s')} s. "
        f"World: {m.get('world', '')}. Figures on a shared 2-core machine are noisy:"
        " one run each, compare ratios more than absolutes."
    )
    out += ["", "```json", _json(j), "```", ""]
    goals = [
        (
            "fans with an open stream (min at full load)",
            f"{j['sse_open_min']} of {j['users']}",
            j["sse_open_min"] >= j["users"],
        ),
        (
            "p99 ingest ≤ 100 ms",
            _ms(j["p99_ms"]["ingest"]) + " ms",
            (j["p99_ms"]["ingest"] or 1e9) <= GOAL_P99_MS,
        ),
        (
            "p99 reads ≤ 100 ms",
            _ms(j["p99_ms"]["reads"]) + " ms",
            (j["p99_ms"]["reads"] or 1e9) <= GOAL_P99_MS,
        ),
        (
            "0 5xx" + (" (faults included)" if summary["faults"] else ""),
            str(j["status"]["5xx"]),
            j["status"]["5xx"] == 0,
        ),
        ("acked events lost", str(rec.get("lost_events", 0)), rec.get("lost_events", 0) == 0),
        (
            "accepted emails not at the sink (queued or lost)",
            str(rec.get("lost_delivery_count", 0)),
            rec.get("lost_delivery_count", 0) == 0,
        ),
        (
            "duplicate emails at the sink",
            str(j["notifications"]["duplicates"]),
            j["notifications"]["duplicates"] == 0,
        ),
    ]
    out += ["| goal | measured | met |", "|---|---|---|"]
    out += [f"| {g} | {v} | {'yes' if ok else '**no**'} |" for g, v, ok in goals]
    out += [
        "",
        "Per route (rates over the full-load window; latency of answered requests):",
        "",
        "| route | offered/s | achieved (2xx)/s | p50 ms | p95 ms | p99 ms | statuses |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for route, r in summary["routes"].items():
        st = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
        out.append(
            f"| {route} | {r['offered_per_s']} | {r['achieved_per_s']} | {_ms(r['p50_ms'])}"
            f" | {_ms(r['p95_ms'])} | {_ms(r['p99_ms'])} | {st} |"
        )
    out.append("")
    if summary["transport_errors"]:
        errs = ", ".join(f"{k}: {v}" for k, v in summary["transport_errors"].items())
        out += [f"Requests without an answer / failed writes: {errs}.", ""]
        if summary.get("error_examples"):
            out += ["Examples: " + "; ".join(f"`{e}`" for e in summary["error_examples"]), ""]
    dbw = ", ".join(
        f"{k}: {v['count']} (failed {v['failed']}, p99 {_ms(v['p99_ms'])} ms)"
        for k, v in summary["db_writes"].items()
    )
    out += [
        f"Votes and follows have no HTTP route on this service (the platform app writes them):"
        f" written under each fan's role as the app does, not counted above: {dbw or 'none'}.",
        "",
    ]
    sse, lag = summary["sse"], summary["lag_s"]
    out += [
        f"Streams: {sse['open_min']}-{sse['open_max']} open at full load, "
        f"{sse['opened_total']} opened in all, drops {sse['drops'] or 'none'}. Notification "
        f"lag, notification created → SMTP sink p50 {_ms(lag['sink_p50'])} s / p99 "
        f"{_ms(lag['sink_p99'])} s; → fan's stream p50 {_ms(lag['stream_p50'])} s / p99 "
        f"{_ms(lag['stream_p99'])} s (of the {rec.get('notifications_created', 0)} in-app "
        "notifications made from 5 s after the ramp to the end, "
        f"{rec.get('stream_seen_in_window', 0)} reached a stream; "
        f"{rec.get('stream_duplicates', 0)} seen twice).",
        "",
    ]
    out += [
        f"Reconciliation: events acked {rec.get('acked')}, stored {rec.get('stored_of_acked')}"
        f" of them (lost {rec.get('lost_events')}; refused with an error, so not acked: "
        f"{rec.get('refused_events')}). Email deliveries owed {rec.get('accepted')} (send API "
        f"answers: {rec.get('accepted_api')}; the rest from the event feeds), at the sink "
        f"{rec.get('delivered')}, duplicates {rec.get('duplicates')} "
        f"{rec.get('duplicate_ids') or ''}; held by the fans' preferences or a frequency cap (owed"
        f" later, not counted): {rec.get('held_by_preferences')}; owed but still queued after"
        f" the drain wait (stored, not delivered): {rec.get('stuck_queued', 0)}; marked sent"
        f" but never at the sink (lost): {rec.get('sent_not_at_sink', 0)}; statuses "
        f"{rec.get('delivery_statuses')}.",
        "",
    ]
    out += [
        "Processes (mean CPU % of one core at full load, max RSS):",
        "",
        "| process | CPU % | RSS MiB |",
        "|---|---:|---:|",
    ]
    for pname, p in summary["processes"].items():
        out.append(f"| {pname} | {p['cpu_percent_mean']} | {p['rss_mib_max']} |")
    out.append(
        f"| generator (this harness) | {_ms(gen['cpu_percent_p50'])} (p50), "
        f"max {_ms(gen['cpu_percent_max'])} | |"
    )
    out += [
        "",
        f"Database connections (pg_stat_activity, this database): max "
        f"{summary['db_connections']['max']}, mean {summary['db_connections']['mean']}. "
        f"Background work queued: {summary['background']['queued']} (already queued: "
        f"{summary['background']['already_queued']}). Generator event-loop lag p95 "
        f"{_ms(gen['loop_lag_ms_p95'])} ms: "
        + (
            "**the generator is a bottleneck** (its CPU or loop lag is high), so latencies"
            " include the client's own delay."
            if gen["bottleneck"]
            else "the generator is not the bottleneck."
        ),
        "",
    ]
    if summary.get("supervisor"):
        out += [
            "Processes that exited on their own (restarted by the harness as a supervisor"
            " would, after 2 s): " + "; ".join(summary["supervisor"]) + ".",
            "",
        ]
    if summary["faults"]:
        out += [
            "Faults (errors seen by clients from the fault until 60 s after it ended; recovery:"
            " from the fault to the last failed answer; lost: acknowledged events not stored"
            " that were acked, and owed emails never at the sink that were created, from 5 s"
            " before the fault to the end of its window; the run's totals and duplicates are"
            " in the reconciliation above):",
            "",
            "| fault | at s | target | client-visible errors | failed DB writes | recovery s |"
            " acked events lost / owed emails lost near it | notes |",
            "|---|---:|---|---|---:|---:|---|---|",
        ]
        for f in summary["faults"]:
            errs = ", ".join(f"{k}: {v}" for k, v in f["errors"].items()) or "none"
            note = f["skipped"] or "; ".join(f["notes"])
            out.append(
                f"| {f['name']} | {f['at_s']} | {f['target'] or '-'} | {errs} | "
                f"{f['db_write_failures']} | {_ms(f['recovery_s'])} | "
                f"{f['lost_events_acked_near']} / {f.get('lost_emails_created_near', 0)} | {note} |"
            )
        out.append("")
        out += render_alerts(summary)
    prof = summary["profile"]
    if prof.get("svg") or prof.get("error"):
        if prof.get("svg"):
            link = f"{img_prefix or ''}{prof['svg']}"
            out += [
                f"Profile of the API process mid-run (py-spy, 20 s): [flame graph]({link}). "
                "Functions on the stack in the most samples:",
                "",
            ]
            out += [f"- {share} % `{fn}`" for fn, share in prof.get("top", [])]
        else:
            out.append(f"Profile: {prof['error']}")
        out.append("")
    if img_prefix is not None:
        out += [
            f"![latency]({img_prefix}load-{name}-latency.png)",
            f"![throughput]({img_prefix}load-{name}-throughput.png)",
            "",
        ]
    return "\n".join(out)


def _alert_name(alert: str, labels: str) -> str:
    return f"{alert}{{{labels}}}" if labels else alert


def render_alerts(summary: dict[str, Any]) -> list[str]:
    """The alerts table of a chaos run: per fault, the alerts it should (or should not)
    raise, with their pending, firing and resolved times, then any other alert it raised."""
    a = summary.get("alerts") or {}
    if not a:
        return []
    if a.get("off"):
        return [f"Alerts: not watched ({a['off']}).", ""]
    iv = a.get("intervals") or {}
    where = "a Prometheus the harness started" if a.get("private") else "the topology's Prometheus"
    out = [
        f"Alerts ({where}, {a.get('prometheus')}, with deploy/prometheus's rules; scrape every"
        f" {_ms(iv.get('scrape_s'))} s, rules evaluated every {_ms(iv.get('eval_s'))} s;"
        f" `/api/v1/alerts` polled every {_ms(a.get('poll_s'))} s, {a.get('polls', 0)} polls,"
        f" {a.get('poll_errors', 0)} failed). Times in seconds from the fault's start;"
        " pending = Prometheus's activeAt, firing and resolved = the first poll that saw it."
        ' "Needs": how long the fault must last for the rule to fire at worst (detection +'
        " scrape + evaluation + its `for:` + 10 s); a shorter fault is expected to stay"
        " pending or not be raised.",
        "",
        "| fault | alert | `for:` s | expected | needs s | fault lasted s | pending | firing |"
        " resolved | outcome |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for f in summary["faults"]:
        lasted = round((f["done_s"] or f["at_s"]) - f["at_s"], 1)
        for r in f.get("alerts", []):
            expected = r["expected"] + (f" ({r['why']})" if r.get("why") else "")
            outcome = r["outcome"] + (f" on {r['instances']} targets" if r["instances"] > 1 else "")
            if not r["as_expected"]:
                outcome = f"**{outcome}** (not as expected)"
            elif r["expected"] == "fires" and not r["long_enough"] and r["outcome"] != "fired":
                outcome += " (fault shorter than the rule needs)"
            out.append(
                f"| {f['name']} | {_alert_name(r['alert'], r['labels'])} | {_ms(r['for_s'])}"
                f" | {expected} | {_ms(r['needs_s'])} | {lasted:g} | {_ms(r['pending_s'])}"
                f" | {_ms(r['firing_s'])} | {_ms(r['resolved_s'])} | {outcome} |"
            )
        for r in f.get("other_alerts", []):
            out.append(
                f"| {f['name']} | also: {_alert_name(r['alert'], r['labels'])} | | | | |"
                f" {_ms(r['pending_s'])} | {_ms(r['firing_s'])} | {_ms(r['resolved_s'])} |"
                " raised in the fault's window |"
            )
    out.append("")
    for key, text in (
        ("before_faults", "Alerts active before the first fault"),
        ("unresolved", "Alerts still active when the poller stopped"),
    ):
        rows = a.get(key) or []
        listed = "; ".join(
            f"{_alert_name(r['alert'], r['labels'])} (pending {_ms(r['pending_s'])} s, firing"
            f" {_ms(r['firing_s'])} s since start)"
            for r in rows
        )
        out += [f"{text}: {listed or 'none'}.", ""]
    return out


def _load(x: Any) -> str:
    return " ".join(f"{v:.2f}" for v in x) if x else "?"


def _json(j: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(j).decode()


def replace_between(text: str, name: str, body: str) -> str:
    start, end = f"<!-- load-report:{name}:start -->", f"<!-- load-report:{name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def write_report(summary: dict[str, Any], docs: Path, img_dir: Path, name: str) -> None:
    plot(summary, img_dir, name)
    prefix = Path(img_dir).relative_to(docs.parent).as_posix() + "/"
    text = docs.read_text() if docs.exists() else "# Performance\n"
    docs.write_text(replace_between(text, name, render(summary, name, img_prefix=prefix)))
