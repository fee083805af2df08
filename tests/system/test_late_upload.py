"""One deadline rule for late uploads (SPEC "Deadline"), end to end.

A cell added now whose only patrol, made hours ago, is uploaded late has
been unpatrolled since that patrol: the daemon raises `overdue`, `status`
says overdue and `report` counts the overdue time, all from the same
database. Before, the daemon counted from known_since and raised nothing,
and the report said 100 % covered. Likewise the end of a pause ended with
`resume` is the base for `status` and for the daemon after a restart.
"""
import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone

from harness import Recorder, publish, record_sink, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
SH = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST

INTERVAL_S, GRACE_S = 3600, 600
CELLS = f"""\
cells:
  - id: yh-01
    name: "测试网格 yh-01"
    interval: {INTERVAL_S}s
    grace: {GRACE_S}s
    repeat: 1h
    active: always
    workers: [w017]
"""


def cli_json(d, *args):
    r = subprocess.run([GRIDPATROL, "-c", d.conf, *args, "--format", "json"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def rfc(t):
    return datetime.fromtimestamp(t, SH).isoformat()


def test_late_first_patrol_is_the_base_for_daemon_status_and_report(make_daemon, broker,
                                                                      tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    alerts = ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
              "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
              f"  sinks:\n{record_sink('wechat', rec.dir)}")
    d = make_daemon(cells=CELLS, extra=alerts).start()
    (known,), = d.query("SELECT known_since FROM cell WHERE id = 'yh-01'")

    # Three hours ago, within max_backfill; known_since is now.
    patrol = int(time.time()) - 3 * 3600
    publish(broker, "patrol/yh-01/w017/checkin",
            json.dumps({"id": "late-1", "ts": rfc(patrol)}).encode())
    wait_for(lambda: d.count() == 1, 10, "the late patrol stored")
    assert patrol < known

    # The daemon: overdue since patrol + interval + grace, i.e. at once.
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert for the late patrol")
    a = rec.alerts("overdue")[0]
    assert a["cell"] == "yh-01" and a["repeat"] == 0
    assert a["due"] == rfc(patrol + INTERVAL_S)
    assert a["last_patrol"] == {"ts": rfc(patrol), "worker": "w017"}

    # status: the same base.
    cell = {c["id"]: c for c in cli_json(d, "status")["cells"]}["yh-01"]
    assert cell["state"] == "overdue"
    assert cell["due"] == rfc(patrol + INTERVAL_S)
    assert cell["last_patrol"] == {"ts": rfc(patrol), "worker": "w017"}

    # report for the patrol's day: tracked from the patrol (before
    # known_since), overdue from patrol + interval + grace to the report's
    # "now" (or the day's end).
    day = datetime.fromtimestamp(patrol, SH).date()
    day_end = int(datetime(day.year, day.month, day.day, tzinfo=SH).timestamp()) + 86400
    t0 = int(time.time())
    doc = cli_json(d, "report", "--date", day.isoformat())
    t1 = int(time.time()) + 1
    c = {x["id"]: x for x in doc["cells"]}["yh-01"]
    lo, hi = min(t0, day_end) - patrol, min(t1, day_end) - patrol  # tracked seconds
    late = INTERVAL_S + GRACE_S
    assert lo - late <= c["overdue_s"] <= hi - late, (c, lo, hi)
    assert c["overdue_s"] > 0
    pct_lo = round(100.0 * late / hi, 1)
    pct_hi = round(100.0 * late / lo, 1)
    assert pct_lo - 0.1 <= c["covered_pct"] <= pct_hi + 0.1, (c, pct_lo, pct_hi)
    assert c["covered_pct"] < 100
    assert c["patrols"] == 1 and c["late"] == 1
    assert doc["summary"]["overdue"] == 1 and doc["summary"]["covered"] == 0

    # A restart rebuilds the same base (from event_span) and sends nothing twice.
    assert d.stop() == 0
    d.start()
    cell = {c["id"]: c for c in cli_json(d, "status")["cells"]}["yh-01"]
    assert cell["state"] == "overdue"
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"probe"}')
    wait_for(lambda: d.count() == 2, 10, "pipeline live after restart")
    assert d.count("alert", "kind = 'overdue' AND repeat = 0") == 1
    assert d.stop() == 0


# A probe that raises an alert but is no patrol, so it moves no base.
PROBE_EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  fishing: { label: "水库钓鱼", alert: immediate, patrol: false }
"""


def test_resume_end_is_the_base_for_status_and_a_restart(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    alerts = ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
              "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
              f"  sinks:\n{record_sink('wechat', rec.dir)}")
    d = make_daemon(cells=CELLS, extra=alerts, events=PROBE_EVENTS).start()
    assert d.stop() == 0
    # Paused while the daemon is down, so it is paused from its start on.
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "pause", "yh-01"], capture_output=True)
    assert r.returncode == 0, r.stderr
    d.start()
    patrol = int(time.time()) - 3 * 3600
    publish(broker, "patrol/yh-01/w017/checkin",
            json.dumps({"id": "late-2", "ts": rfc(patrol)}).encode())
    wait_for(lambda: d.count() == 1, 10, "the late patrol stored")
    t0 = int(time.time())
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "resume", "yh-01"], capture_output=True)
    assert r.returncode == 0, r.stderr
    t1 = int(time.time()) + 1

    # The count restarts at the resume, for status as for the daemon...
    cell = {c["id"]: c for c in cli_json(d, "status")["cells"]}["yh-01"]
    assert cell["state"] == "ok", cell
    due = datetime.fromisoformat(cell["due"]).timestamp()
    assert t0 + INTERVAL_S <= due <= t1 + INTERVAL_S, (cell, t0, t1)
    # ...and for the daemon after a restart, which must not fall back to
    # the three-hour-old patrol (that would be overdue at once).
    assert d.stop() == 0
    d.start()
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"probe"}')
    wait_for(lambda: rec.alerts("event"), 10, "event alert after restart")
    assert d.count("alert", "kind = 'overdue'") == 0
    assert d.stop() == 0
