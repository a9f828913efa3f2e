"""bench/load.py --chaos's alert bookkeeping (bench/load_alerts.py) and fault plumbing
(bench/load_chaos.py), fast: the timeline Prometheus's /api/v1/alerts answers make, which
alerts each fault is credited with, how long a fault must last for a rule to fire (from the
real deploy/prometheus/alerts.yml), the fault schedule, the report's alerts table, and a
topology process killed and started again from the files up.sh records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.bench_smoke.test_load import _bench_module, _made_up_run
from tests.conditions import wait_until

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
T0 = 1_800_000_000.0


def _alert(name: str, state: str, active: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "state": state, "activeAt": active}


def _timeline(alerts: ModuleType) -> Any:
    """TargetDown for api 18408 pending at +12 s, firing at +46 s, gone at +70 s; RedisDown
    on both APIs from +150 s, firing at +170, gone at +200; one failed poll in between."""
    tl = alerts.AlertTimeline()
    down = "2027-01-15T08:00:12.123456789Z"  # T0 + 12.12 (nanoseconds trimmed)
    api = {"job": "api", "instance": "127.0.0.1:18408"}
    tl.observe(T0 + 5, [])
    tl.observe(T0 + 14, [_alert("TargetDown", "pending", down, **api)])
    tl.observe(T0 + 46, [_alert("TargetDown", "firing", down, **api)])
    tl.failed("ConnectError: refused")  # nothing resolves on a failed poll
    tl.observe(T0 + 48, [_alert("TargetDown", "firing", down, **api)])
    tl.observe(T0 + 70, [])
    redis = [
        _alert("RedisDown", "pending", "2027-01-15T08:02:30Z", instance=f"127.0.0.1:{p}")
        for p in (18408, 18409)
    ]
    tl.observe(T0 + 152, redis)
    tl.observe(T0 + 170, [dict(a, state="firing") for a in redis])
    tl.observe(T0 + 174, [dict(a, state="firing") for a in redis] + [
        _alert("ServerErrors", "firing", "2027-01-15T08:02:54Z", route="/v1/batch")
    ])  # fmt: skip
    tl.observe(T0 + 200, [_alert("ServerErrors", "firing", "2027-01-15T08:02:54Z",
                                 route="/v1/batch")])  # fmt: skip
    return tl


def test_timeline_episodes_from_polls() -> None:
    alerts = _bench_module("load_alerts")
    assert alerts.parse_time("2027-01-15T08:00:00Z") == T0
    assert alerts.parse_time("0001-01-01T00:00:00Z") is None
    tl = _timeline(alerts)
    assert tl.polls == 9
    assert tl.poll_errors == 1
    assert [e.name for e in tl.episodes] == ["TargetDown", "RedisDown", "RedisDown",
                                             "ServerErrors"]  # fmt: skip
    target = tl.episodes[0]
    assert round(target.began - T0, 2) == 12.12  # activeAt, not the poll that saw it
    assert target.first_seen == T0 + 14
    assert target.firing_at == T0 + 46
    assert target.resolved_at == T0 + 70  # not at the failed poll
    assert tl.episodes[1].resolved_at == T0 + 200
    assert [e.name for e in tl.open_episodes()] == ["ServerErrors"]


def test_fault_credited_with_its_alerts() -> None:
    alerts = _bench_module("load_alerts")
    tl = _timeline(alerts)
    api = (("job", "api"), ("instance", "127.0.0.1:18408"))
    rows, others = alerts.match_fault(
        tl.episodes,
        [
            alerts.Expect("TargetDown", api, needs_s=50),
            alerts.Expect("TargetDown", (("job", "api"), ("instance", "127.0.0.1:18409"))),
            alerts.Expect("WorkerDown", fires=False, why="another worker is alive"),
        ],
        T0 + 10,
        T0 + 100,
        lasted_s=60,
        rule_for={"TargetDown": 30.0},
    )
    killed, other_api, worker = rows
    assert killed["outcome"] == "fired"
    assert killed["as_expected"]
    assert (killed["pending_s"], killed["firing_s"], killed["resolved_s"]) == (2.1, 36.0, 60.0)
    assert killed["for_s"] == 30.0
    assert killed["labels"] == 'job="api",instance="127.0.0.1:18408"'
    assert other_api["outcome"] == "not raised"
    assert not other_api["as_expected"]  # the fault lasted long enough: it should have fired
    assert worker["outcome"] == "not raised"
    assert worker["as_expected"]
    assert others == []  # RedisDown began outside the window
    rows, others = alerts.match_fault(
        tl.episodes, [alerts.Expect("RedisDown", needs_s=42.5)], T0 + 140, T0 + 230, 45
    )
    assert rows[0]["instances"] == 2
    assert rows[0]["firing_s"] == 30.0
    assert rows[0]["resolved_s"] == 60.0
    assert [(o["alert"], o["resolved_s"]) for o in others] == [("ServerErrors", None)]


def test_short_fault_may_stay_pending_long_one_may_not() -> None:
    alerts = _bench_module("load_alerts")
    tl = alerts.AlertTimeline()
    tl.observe(T0 + 3, [_alert("DatabaseDown", "pending", "2027-01-15T08:00:02Z")])
    tl.observe(T0 + 9, [])
    expect = [alerts.Expect("DatabaseDown", needs_s=42.5)]
    (short,), _ = alerts.match_fault(tl.episodes, expect, T0, T0 + 60, lasted_s=1.5)
    assert short["outcome"] == "pending only"
    assert short["as_expected"]
    assert not short["long_enough"]
    (long,), _ = alerts.match_fault(tl.episodes, expect, T0, T0 + 60, lasted_s=45)
    assert not long["as_expected"]


def test_hold_from_the_real_rules() -> None:
    """The faults' alerts exist in deploy/prometheus/alerts.yml, and the hold follows their
    `for:` (a rule renamed or lengthened changes what the harness must wait)."""
    alerts = _bench_module("load_alerts")
    rules = {
        r["alert"]: alerts.duration_seconds(r.get("for", "0s"))
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert {"TargetDown", "WorkerDown", "DatabaseDown", "RedisDown"} <= set(rules)
    assert alerts.hold_seconds(rules["TargetDown"]) == rules["TargetDown"] + 20
    assert alerts.hold_seconds(15, detect_s=7.5) == 42.5
    assert alerts.duration_seconds("1h30m") == 5400
    assert alerts.duration_seconds("500ms") == 0.5
    answer = {"data": {"groups": [{"rules": [
        {"type": "alerting", "name": "TargetDown", "duration": 30},
        {"type": "recording", "name": "job:up:sum"},
    ]}]}}  # fmt: skip
    assert alerts.parse_rule_durations(answer) == {"TargetDown": 30.0}
    config = "global:\n  scrape_interval: 5s\n  evaluation_interval: 1m\n"
    assert alerts.parse_intervals(config) == {"scrape_s": 5.0, "eval_s": 60.0}


def test_fault_schedule_leaves_room_for_each_fault() -> None:
    chaos = _bench_module("load_chaos")
    lasting = {
        "kill_api": 73, "kill_worker": 65, "restart_postgres": 18, "stop_postgres": 62,
        "stop_redis": 65,
    }  # fmt: skip
    times = chaos.fault_times(10, 300, lasting)
    assert list(times) == list(chaos.FAULTS)
    ends = [times[n] + lasting[n] for n in chaos.FAULTS]
    starts = [times[n] for n in chaos.FAULTS]
    assert all(end < nxt for end, nxt in zip(ends, starts[1:], strict=False))
    assert starts[0] > 10
    assert ends[-1] < 10 + 300
    # an overfull schedule runs the faults back to back, never before the start
    assert chaos.fault_times(10, 60, lasting)["kill_api"] == 10


def test_report_shows_each_fault_with_its_alerts(tmp_path: Path) -> None:
    report = _bench_module("load_report")
    alerts = _bench_module("load_alerts")
    chaos = _bench_module("load_chaos")
    summary_plain = _made_up_run(report)
    assert summary_plain["alerts"] == {}
    stats = report.RunStats(t0=T0)
    stats.record(20.0, "GET inbox", 502, 3.0)
    stats.full_load_from, stats.full_load_to = 5.0, 240.0
    kill = chaos.FaultRecord("kill_api", 10.0, done_s=70.0, target="api-1")
    kill.expect = [alerts.Expect("TargetDown", (("job", "api"),), needs_s=50)]
    redis = chaos.FaultRecord("stop_redis", 140.0, done_s=185.0, target="all 3 masters")
    redis.expect = [alerts.Expect("RedisDown", needs_s=42.5)]
    stats.faults = [kill, redis]
    stats.reconciliation = {"lost_event_ack_times": [12.0, 300.0], "lost_delivery_created": [150.0]}
    stats.alert_timeline = _timeline(alerts)
    stats.alerts_source = {
        "prometheus": "http://127.0.0.1:18412",
        "private": False,
        "rule_for": {"TargetDown": 30.0, "RedisDown": 15.0},
        "intervals": {"scrape_s": 5.0, "eval_s": 5.0},
        "poll_s": 2.0,
    }
    summary = report.summarise(stats)
    text = report.render(summary, "chaos-topology", img_prefix=None)
    assert (
        '| kill_api | TargetDown{job="api"} | 30 | fires | 50 | 60 | 2.1 | 36 | 60 | fired |'
        in text
    )
    assert "| stop_redis | RedisDown | 15 | fires | 42.5 | 45 | 10 | 30 | 60 | fired on 2" in text
    assert '| stop_redis | also: ServerErrors{route="/v1/batch"} |' in text
    assert "Alerts still active when the poller stopped: ServerErrors" in text
    assert "9 polls, 1 failed" in text
    assert "| kill_api | 10.0 | api-1 | 5xx: 1 | 0 | 10 | 1 / 0 |" in text  # the 502 at 20 s
    assert "| stop_redis | 140.0 | all 3 masters | none | 0 | - | 0 / 1 |" in text
    docs = tmp_path / "performance.md"
    docs.write_text(
        "# P\n<!-- load-report:chaos:start -->\nkeep me\n<!-- load-report:chaos:end -->\n"
    )
    report.write_report(summary, docs, tmp_path / "img", "chaos-topology")
    written = docs.read_text()
    assert "keep me" in written
    assert written.count("<!-- load-report:chaos-topology:start -->") == 1


def test_topology_process_killed_and_started_again(tmp_path: Path) -> None:
    """A process recorded as up.sh's start_bg records it: `kill` takes its group down,
    `restart` starts the same command line with the recorded environment and updates the
    pid file down.sh reads."""
    chaos = _bench_module("load_chaos")
    run, logs = tmp_path / "run", tmp_path / "logs"
    run.mkdir()
    logs.mkdir()
    (run / "up").touch()
    out = tmp_path / "seen"
    argv = [sys.executable, "-c", "import os,time; open(os.environ['OUT'],'a').write("
            "os.environ['MARK'] + '\\n'); time.sleep(120)", "--port", "18408"]  # fmt: skip
    (run / "api-1.argv").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
    env = {"PATH": os.environ["PATH"], "OUT": str(out), "MARK": "recorded-env"}
    (run / "api-1.env").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()))
    first = subprocess.Popen(argv, env=env, start_new_session=True)
    (run / "api-1.pid").write_text(f"{first.pid}\n")
    topo = chaos.Topology(tmp_path)
    try:
        assert topo.names("api-") == ["api-1"]
        assert topo.option("api-1", "--port") == "18408"
        wait_until(lambda: (out.exists() and out.read_text()) or None, "the first start", within=20)
        assert topo.kill("api-1") == first.pid
        assert first.wait(timeout=10) == -9
        new = topo.restart("api-1")
        assert new != first.pid
        assert int((run / "api-1.pid").read_text()) == new
        wait_until(
            lambda: out.read_text().count("recorded-env") == 2 or None,
            "the restarted process to run with the recorded environment",
            within=20,
        )
        assert topo.pids()["api-1"] == new
    finally:
        for proc in [first, *topo.children]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
