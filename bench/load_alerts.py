"""Alerts during `bench/load.py --chaos`: which Prometheus alerts each fault raised, and
when they went pending, fired and resolved.

A poller (`AlertPoller`, a thread, so that it keeps polling while the harness blocks on its
reconciliation) reads Prometheus's `/api/v1/alerts` every `POLL_S` seconds into an
`AlertTimeline`: one `Episode` per alert (name and labels) from the poll that first lists
it to the first poll that no longer does (resolved). Prometheus lists pending and firing
alerts only; its `activeAt` (when the rule's expression first held) dates the pending
start more precisely than the poll.

`match_fault` takes a fault's window (from its start to the next fault, or a while after it
ended) and the alerts it is expected to raise (`Expect`, with the labels that name the
process it hit), and says for each whether it fired, stayed pending (the fault was
shorter than the rule's `for:`) or was not raised, plus any other alert that began in the
window. `hold_seconds` is how long a fault must last for a rule to fire: a fault held that
long shows its alert; one that is not is reported as pending-only, never hidden by
weakening a rule.

On the single install the harness starts a Prometheus of its own (`PrivatePrometheus`)
with the same rule files and intervals as deploy/local-cluster's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
POLL_S = 2.0
SCRAPE_S = 5.0  # deploy/local-cluster's Prometheus; the private one uses the same
EVAL_S = 5.0
# How long after a dependency stops answering a process's metrics say so: the dependency
# monitor probes every 5 s with a 2.5 s cap (core/health_routes.py).
DEPENDENCY_DETECT_S = 7.5
MARGIN_S = 10.0


@dataclass(frozen=True)
class Expect:
    """An alert a fault should raise (`fires`), or should not (another instance serves):
    `labels` must all match the alert's. `needs_s`: how long the fault must last for the
    alert to fire (`hold_seconds`); a shorter fault is expected to leave it pending or not
    raised."""

    alert: str
    labels: tuple[tuple[str, str], ...] = ()
    fires: bool = True
    needs_s: float = 0.0
    why: str = ""

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        return name == self.alert and all(labels.get(k) == v for k, v in self.labels)

    def label_text(self) -> str:
        return ",".join(f'{k}="{v}"' for k, v in self.labels)


@dataclass
class Episode:
    name: str
    labels: dict[str, str]
    active_at: float | None  # epoch: Prometheus's activeAt (the expression first held)
    first_seen: float  # epoch of the poll that first listed it
    firing_at: float | None = None  # epoch of the first poll that saw it firing
    resolved_at: float | None = None  # epoch of the first poll that no longer listed it

    @property
    def began(self) -> float:
        return self.active_at if self.active_at is not None else self.first_seen

    def label_text(self) -> str:
        return ",".join(
            f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k not in ("alertname",)
        )


def parse_time(text: str | None) -> float | None:
    """Prometheus's RFC 3339 time (nanoseconds allowed) as epoch seconds; None for its
    zero time or nothing."""
    if not text or text.startswith("0001-"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@dataclass
class AlertTimeline:
    episodes: list[Episode] = field(default_factory=list)
    polls: int = 0
    poll_errors: int = 0
    last_error: str | None = None
    _open: dict[tuple[tuple[str, str], ...], Episode] = field(default_factory=dict)

    def observe(self, now: float, alerts: list[dict[str, Any]]) -> None:
        """One answer of /api/v1/alerts (its data.alerts), read at epoch `now`."""
        self.polls += 1
        listed = set()
        for alert in alerts:
            labels = {str(k): str(v) for k, v in alert.get("labels", {}).items()}
            key = _key(labels)
            listed.add(key)
            episode = self._open.get(key)
            if episode is None:
                episode = Episode(
                    name=labels.get("alertname", "?"),
                    labels=labels,
                    active_at=parse_time(alert.get("activeAt")),
                    first_seen=now,
                )
                self._open[key] = episode
                self.episodes.append(episode)
            if alert.get("state") == "firing" and episode.firing_at is None:
                episode.firing_at = now
        for key in [k for k in self._open if k not in listed]:
            self._open.pop(key).resolved_at = now

    def failed(self, error: str) -> None:
        """A poll without an answer: nothing is resolved by it."""
        self.poll_errors += 1
        self.last_error = error

    def open_episodes(self) -> list[Episode]:
        return list(self._open.values())


def parse_rule_durations(rules_answer: dict[str, Any]) -> dict[str, float]:
    """Each alerting rule's `for:` in seconds, from /api/v1/rules (what Prometheus
    loaded)."""
    out: dict[str, float] = {}
    for group in rules_answer.get("data", {}).get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("type") == "alerting":
                out[rule["name"]] = float(rule.get("duration", 0) or 0)
    return out


def hold_seconds(
    rule_for_s: float,
    scrape_s: float = SCRAPE_S,
    eval_s: float = EVAL_S,
    detect_s: float = 0.0,
    margin_s: float = MARGIN_S,
) -> float:
    """How long a fault must last for a rule with `for: rule_for_s` to fire, at worst:
    the process notices (`detect_s`), the next scrape sees it, the next evaluation makes
    it pending, `for:` later it fires; plus a margin for a loaded machine."""
    return detect_s + scrape_s + eval_s + rule_for_s + margin_s


def _rel(epoch: float | None, origin: float) -> float | None:
    return None if epoch is None else round(epoch - origin, 1)


def match_fault(
    episodes: list[Episode],
    expects: list[Expect],
    start: float,
    end: float,
    lasted_s: float,
    rule_for: dict[str, float] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The fault's alerts: for each expectation one row (its episodes that began in
    [start, end), epochs; times in the row are seconds from `start`), and the other
    alerts that began in the window. A fault that lasted `lasted_s` seconds, shorter than
    an expectation's `needs_s`, is not expected to fire it (pending or nothing is right)."""
    rule_for = rule_for or {}
    in_window = [e for e in episodes if start - 1.0 <= e.began < end]
    used: set[int] = set()
    rows = []
    for expect in expects:
        hits = [e for e in in_window if expect.matches(e.name, e.labels)]
        used.update(id(e) for e in hits)
        firing = [e.firing_at for e in hits if e.firing_at is not None]
        resolved = [e.resolved_at for e in hits]
        if firing:
            outcome = "fired"
        elif hits:
            outcome = "pending only"
        else:
            outcome = "not raised"
        long_enough = lasted_s >= expect.needs_s
        if expect.fires and long_enough:
            ok = outcome == "fired"
        elif expect.fires:
            ok = True  # too short to fire: pending, fired or nothing are all right
        else:
            ok = outcome != "fired"
        rows.append(
            {
                "alert": expect.alert,
                "labels": expect.label_text(),
                "expected": "fires" if expect.fires else "does not fire",
                "needs_s": round(expect.needs_s, 1),
                "long_enough": long_enough,
                "why": expect.why,
                "for_s": rule_for.get(expect.alert),
                "instances": len(hits),
                "pending_s": _rel(min((e.began for e in hits), default=None), start),
                "firing_s": _rel(min(firing, default=None), start),
                "resolved_s": None
                if not hits or any(r is None for r in resolved)
                else _rel(max(r for r in resolved if r is not None), start),
                "outcome": outcome,
                "as_expected": ok,
            }
        )
    others = [
        {
            "alert": e.name,
            "labels": e.label_text(),
            "pending_s": _rel(e.began, start),
            "firing_s": _rel(e.firing_at, start),
            "resolved_s": _rel(e.resolved_at, start),
        }
        for e in in_window
        if id(e) not in used
    ]
    return rows, others


# -- Prometheus ----------------------------------------------------------------------------


class AlertPoller:
    """Polls `/api/v1/alerts` every `every` seconds in a thread into `timeline`."""

    def __init__(self, url: str, every: float = POLL_S) -> None:
        self.url = url.rstrip("/")
        self.every = every
        self.timeline = AlertTimeline()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-poller", daemon=True)
        self.rule_for: dict[str, float] = {}
        self.intervals: dict[str, float] = {}

    def start(self) -> None:
        import httpx

        try:
            self.rule_for = parse_rule_durations(
                httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()
            )
            config = httpx.get(f"{self.url}/api/v1/status/config", timeout=10).json()
            self.intervals = parse_intervals(config.get("data", {}).get("yaml", ""))
        except Exception as exc:  # reported: the report says the rules were not read
            self.timeline.failed(f"rules: {type(exc).__name__}: {exc}")
        self._thread.start()

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    answer = client.get(f"{self.url}/api/v1/alerts").json()
                    alerts = answer["data"]["alerts"]
                    with self.lock:
                        self.timeline.observe(time.time(), alerts)
                except Exception as exc:  # Prometheus busy or gone: counted, polled again
                    with self.lock:
                        self.timeline.failed(f"{type(exc).__name__}: {exc}"[:200])
                self._stop.wait(self.every)

    def wait_resolved(self, since: float, within: float) -> None:
        """Until every alert that began after `since` (epoch) is resolved, at most
        `within` seconds (a fault near the run's end clears after it)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self.lock:
                still = [e for e in self.timeline.open_episodes() if e.began >= since - 1]
            if not still:
                return
            time.sleep(self.every)

    def stop(self) -> AlertTimeline:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        return self.timeline


def parse_intervals(config_yaml: str) -> dict[str, float]:
    """The global scrape and evaluation intervals from Prometheus's loaded config."""
    import yaml

    glob = (yaml.safe_load(config_yaml) or {}).get("global", {})
    return {
        "scrape_s": duration_seconds(glob.get("scrape_interval", "1m")),
        "eval_s": duration_seconds(glob.get("evaluation_interval", "1m")),
    }


def duration_seconds(text: str) -> float:
    """A Prometheus duration (`30s`, `1m`, `1h30m`, `500ms`) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", str(text))
    if not parts:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


class PrivatePrometheus:
    """A Prometheus for the single install's chaos run: the deploy/prometheus rules, the
    topology's intervals, scraping the API (and the worker's metrics port)."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir / "prometheus"
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, jobs: dict[str, list[str]]) -> str | None:
        """Start it scraping `jobs` (job name -> host:port targets); None, or why not."""
        binary = shutil.which("prometheus")
        if binary is None:
            return "prometheus is not installed (Debian: apt-get install prometheus)"
        self.dir.mkdir(parents=True, exist_ok=True)
        rules = sorted(RULES_DIR.glob("*.yml"))
        lines = [
            "global:",
            f"  scrape_interval: {SCRAPE_S:g}s",
            f"  evaluation_interval: {EVAL_S:g}s",
            "rule_files:",
            *[f"  - {r}" for r in rules],
            "scrape_configs:",
        ]
        for job, targets in jobs.items():
            lines += [
                f"  - job_name: {job}",
                "    static_configs:",
                f"      - targets: [{', '.join(repr(t) for t in targets)}]",
            ]
        (self.dir / "prometheus.yml").write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "prometheus.log").open("wb"),
        )
        import httpx

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"prometheus exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return "prometheus was not ready within 90 s"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
