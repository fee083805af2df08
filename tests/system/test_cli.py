"""The review CLI end to end: a real broker, the real daemon ingesting what
is published, and `gridpatrol` reading (and for pause/resume writing) the
daemon's database while it runs.

The daily-report fixture is built only by publishing messages with
explicit patrol times through mosquitto into gridpatrold; the expected
figures below are worked out by hand from those times (see the comments
at each cell), not read back from the database.
"""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unicodedata
from datetime import date, datetime, timedelta, timezone

import pytest

from harness import Recorder, png_decode, publish, record_sink, sim, sim_start, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
CHROMIUM = "/usr/bin/chromium"
SH = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST

EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  litter: { label: "白色垃圾", patrol: false }
  fishing: { label: "水库钓鱼", alert: immediate }
  flood: { label: "防汛水位", value: { unit: cm, warn: 250, alarm: 300 } }
"""


def cli(d, *args, check=True, db=None):
    cmd = [GRIDPATROL, "-c", d.conf] + (["--db", db] if db else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} exited {r.returncode}: {r.stderr.decode()}")
    return r


def cli_json(d, *args):
    return json.loads(cli(d, *args, "--format", "json").stdout)


def one_line_error(r):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("gridpatrol: "), err
    assert r.stdout == b""
    return err


def ts(day, hh, mm=0):
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SH)


def rfc(dt):
    return dt.isoformat()


def send(broker, cell, worker, typ, when=None, mid=None, **fields):
    doc = dict(fields)
    if mid:
        doc["id"] = mid
    if when is not None:
        doc["ts"] = rfc(when)
    publish(broker, f"patrol/{cell}/{worker}/{typ}", json.dumps(doc, ensure_ascii=False).encode())


def display_width(s):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else
               0 if unicodedata.combining(ch) else 1 for ch in s)


# --------------------------------------------------------------------------
# (1) the daily report against figures computed by hand
# --------------------------------------------------------------------------

REPORT_CELLS = """\
cells:
  - id: yh-01
    name: "云华社区 1号网格（紫坪铺库岸）"
    interval: 2h
    workers: [w017, w021]
  - id: yh-02
    name: "云华社区 2号网格"
  - id: yh-03
    name: "河堤 <3号> & \\"沟渠\\""
    interval: 1d
    grace: 1h
    active: always
  - id: yh-04
    name: "Hamlet 4"
    interval: 1d
    grace: 1h
    active: always
"""


def build_fixture_day(make_daemon, broker):
    """Publish the fixture; returns (daemon, D) with D two local days ago."""
    d = make_daemon(cells=REPORT_CELLS, events=EVENTS).start()
    D = datetime.now(SH).date() - timedelta(days=2)
    # The installation has known these cells since three days before D
    # (gridpatrold writes known_since when a cell first appears; this
    # backdates it as if the daemon had been running since then).
    known = int(ts(D - timedelta(days=3), 0).timestamp())
    con = sqlite3.connect(d.db, timeout=10)
    con.execute("UPDATE cell SET known_since = ?", (known,))
    con.commit()
    con.close()

    P = D - timedelta(days=1)
    msgs = [
        # yh-01: interval 2h, grace 15m, active 07:00-19:00 (defaults).
        ("yh-01", "w017", "checkin", ts(D, 8), {}),
        ("yh-01", "w021", "checkin", ts(D, 9, 30), {}),
        ("yh-01", "w017", "flood", ts(D, 10), {"value": 260}),
        ("yh-01", "w017", "checkin", ts(D, 13), {}),
        ("yh-01", "w021", "fishing", ts(D, 13, 10), {"note": "库湾有人垂钓 <b>"}),
        ("yh-01", "w017", "litter", ts(D, 17, 30), {}),       # not patrol presence
        # yh-02: interval 4h (default); last patrol the evening before.
        ("yh-02", "w030", "checkin", ts(P, 18), {}),
        ("yh-02", "w030", "litter", ts(D, 11), {}),
        # yh-03: never patrolled at all.
        # yh-04: always active, interval 1d, grace 1h.
        ("yh-04", "w040", "checkin", ts(P, 12), {}),
        ("yh-04", "w040", "checkin", ts(D, 6), {}),
        ("yh-04", "w040", "checkin", ts(D, 20), {}),
    ]
    for i, (cell, worker, typ, when, extra) in enumerate(msgs):
        send(broker, cell, worker, typ, when, mid=f"fx{i}", **extra)
    wait_for(lambda: d.count() == len(msgs), 20, "fixture stored")
    return d, D


def expected_report(D):
    def at(hh, mm=0):
        return rfc(ts(D, hh, mm))
    return {
        "date": D.isoformat(),
        "timezone": "Asia/Shanghai",
        "cells": [
            # Tracked from known_since (D-3), never patrolled before D: overdue
            # from 07:00 to the 08:00 patrol (3600 s); after 10:00 due 12:00,
            # overdue 12:15-13:00 (2700 s); after 13:10 due 15:10, overdue
            # 15:25-19:00 (12900 s): 19200 s of 43200 s active → 55.6 %.
            # Longest gap: 13:10 → 19:00 = 21000 s of active time.
            {"id": "yh-01", "name": "云华社区 1号网格（紫坪铺库岸）", "patrols": 5,
             "workers": ["w017", "w021"], "first": at(8), "last": at(13, 10),
             "longest_gap_s": 21000, "covered_pct": 55.6, "overdue_s": 19200,
             "events": {"checkin": 3, "fishing": 1, "flood": 1, "litter": 1},
             "value_min": 260.0, "value_max": 260.0, "alerts": 0, "late": 6},
            # Last patrol D-1 18:00: 1 h of active time by 19:00, due D 10:00,
            # overdue from 10:15 to 19:00 = 31500 s of 43200 → 27.1 %.
            {"id": "yh-02", "name": "云华社区 2号网格", "patrols": 0, "workers": [],
             "first": None, "last": None, "longest_gap_s": 43200, "covered_pct": 27.1,
             "overdue_s": 31500, "events": {"litter": 1}, "value_min": None,
             "value_max": None, "alerts": 0, "late": 1},
            # Known since D-3 00:00, interval 1d + 1h grace: overdue all day.
            {"id": "yh-03", "name": "河堤 <3号> & \"沟渠\"", "patrols": 0, "workers": [],
             "first": None, "last": None, "longest_gap_s": 86400, "covered_pct": 0.0,
             "overdue_s": 86400, "events": {}, "value_min": None, "value_max": None,
             "alerts": 0, "late": 0},
            # D-1 12:00, then 06:00 and 20:00: never 1d + 1h without a patrol.
            # Gaps 00-06, 06-20 (50400 s), 20-24.
            {"id": "yh-04", "name": "Hamlet 4", "patrols": 2, "workers": ["w040"],
             "first": at(6), "last": at(20), "longest_gap_s": 50400, "covered_pct": 100.0,
             "overdue_s": 0, "events": {"checkin": 2}, "value_min": None, "value_max": None,
             "alerts": 0, "late": 2},
        ],
        # Every fixture message is two days old: all are flagged late.
        # No alert of the fixture is a task raised that day: nothing claimed.
        "summary": {"cells": 4, "covered": 1, "never_patrolled": 2, "overdue": 3, "events": 9,
                    "alerts_claimed": 0, "alerts_unclaimed": 0},
    }


def test_report_formats_match_hand_computed_figures(make_daemon, broker, tmp_path):
    d, D = build_fixture_day(make_daemon, broker)
    want = expected_report(D)

    doc = cli_json(d, "report", "--date", D.isoformat())
    assert doc == want

    # CSV: UTF-8 with BOM, RFC 4180 (CRLF), one row per cell.
    raw = cli(d, "report", "--date", D.isoformat(), "--format", "csv").stdout
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["id"] for r in rows] == ["yh-01", "yh-02", "yh-03", "yh-04"]
    r1 = rows[0]
    assert r1["events"] == "checkin:3;fishing:1;flood:1;litter:1"
    assert r1["workers"] == "w017;w021"
    assert (r1["patrols"], r1["covered_pct"], r1["overdue_s"], r1["longest_gap_s"]) == \
        ("5", "55.6", "19200", "21000")
    assert (r1["first"], r1["last"]) == (rfc(ts(D, 8)), rfc(ts(D, 13, 10)))
    assert (r1["value_min"], r1["value_max"], r1["late"]) == ("260", "260", "6")
    assert rows[2]["name"] == "河堤 <3号> & \"沟渠\"" and rows[2]["covered_pct"] == "0.0"
    assert rows[1]["covered_pct"] == "27.1" and rows[1]["first"] == ""

    # Text: Chinese headers, columns aligned by display width, summary.
    text = cli(d, "report", "--date", D.isoformat()).stdout.decode()
    lines = text.splitlines()
    assert lines[0].startswith(f"巡查日报 {D.isoformat()}")
    head = next(i for i, l in enumerate(lines) if l.startswith("网格"))
    assert "覆盖率" in lines[head] and "巡查人" in lines[head]
    body = lines[head + 2:head + 6]
    assert [l.split()[0] for l in body] == ["yh-01", "yh-02", "yh-03", "yh-04"]
    # The right-aligned covered column ends at the same display column.
    ends = []
    for l, pct in zip(body, ["55.6%", "27.1%", "0.0%", "100.0%"]):
        i = l.index(pct)
        ends.append(display_width(l[:i + len(pct)]))
    assert len(set(ends)) == 1, ends
    hw = display_width(lines[head][:lines[head].index("覆盖率") + 3])
    assert ends[0] == hw
    assert "网格 4 个：全天覆盖 1 个，当天未巡查 2 个，曾超时 3 个；事件共 9 条。" in text
    assert "5小时50分" in text  # yh-01's longest gap

    # HTML: one self-contained page, escaped, with the chart and notes.
    out = tmp_path / "report.html"
    cli(d, "report", "--date", D.isoformat(), "--format", "html", "-o", str(out))
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    assert "@page{size:A4" in html and "<svg" in html and 'id="gp-over"' in html
    low = html.lower()
    for bad in ("<script", "<link", "@import", "src=", "href=", "url(http"):
        assert bad not in low, bad
    assert "河堤 &lt;3号&gt; &amp; &quot;沟渠&quot;" in html and "<3号>" not in html
    assert "库湾有人垂钓 &lt;b&gt;" in html           # events of note: fishing
    assert "260cm，达到警戒值 250cm" in html            # reading over warn
    assert "网格 4 个：全天覆盖 1 个" in html
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]

    # The same day in English.
    with open(d.conf, "a") as f:
        f.write("alerts:\n  language: en\n")
    text = cli(d, "report", "--date", D.isoformat()).stdout.decode()
    assert "Covered" in text and "4 cells: 1 fully covered, 2 not patrolled" in text

    # Today: a check-in now is not late; today's alerts are the daemon's.
    publish(broker, "patrol/yh-04/w040/checkin", b"")
    wait_for(lambda: d.count() == 12, 10, "live check-in")
    today = cli_json(d, "report", "--date", "today")
    y4 = next(c for c in today["cells"] if c["id"] == "yh-04")
    assert y4["patrols"] == 1 and y4["late"] == 0 and y4["events"] == {"checkin": 1}
    start = int(ts(datetime.now(SH).date(), 0).timestamp())
    y1 = next(c for c in today["cells"] if c["id"] == "yh-01")
    assert y1["alerts"] == d.count("alert", "cell = 'yh-01' AND at >= ?", (start,)) >= 2
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (2) status while the daemon ingests
# --------------------------------------------------------------------------

def test_status_json_while_ingesting(make_daemon, broker):
    h = datetime.now(SH).hour
    away = f"{(h + 3) % 24:02d}:00-{(h + 4) % 24:02d}:00"  # a window that is not now
    cells = ("cells:\n"
             "  - { id: s-ok, interval: 4h, active: always }\n"
             "  - { id: s-soon, name: \"快到期\", interval: 20m, active: always }\n"
             "  - { id: s-over, interval: 2s, grace: 0s, active: always }\n"
             "  - { id: s-pause, interval: 2s, grace: 0s, active: always }\n"
             f"  - {{ id: s-inact, interval: 4h, active: \"{away}\" }}\n"
             + "".join(f"  - {{ id: c{i:03d}, active: always }}\n" for i in range(10)))
    d = make_daemon(cells=cells, events=EVENTS).start()
    cli(d, "pause", "s-pause", "--reason", "道路塌方")
    send(broker, "s-ok", "w001", "checkin", mid="a")
    send(broker, "s-soon", "w002", "checkin", mid="b")
    wait_for(lambda: d.count() == 2, 10, "check-ins")

    load = sim_start(broker, 20000, "--cells-n", "10", "--rate", "4000")
    seen_running = 0
    try:
        deadline = time.monotonic() + 60
        while load.poll() is None and time.monotonic() < deadline:
            t0 = time.monotonic()
            doc = cli_json(d, "status")
            assert time.monotonic() - t0 < 5
            assert [c["id"] for c in doc["cells"]][:5] == \
                ["s-ok", "s-soon", "s-over", "s-pause", "s-inact"]
            for c in doc["cells"]:
                assert list(c) == ["id", "name", "state", "last_patrol", "due"]
                assert c["state"] in ("ok", "due_soon", "overdue", "paused", "inactive")
            seen_running += 1
    finally:
        assert load.wait(120) == 0, load.stderr.read()
    assert seen_running >= 1
    wait_for(lambda: d.count() == 20002, 60, "all simulated check-ins")

    doc = cli_json(d, "status")
    by = {c["id"]: c for c in doc["cells"]}
    assert by["s-ok"]["state"] == "ok" and by["s-ok"]["last_patrol"]["worker"] == "w001"
    assert by["s-soon"]["state"] == "due_soon" and by["s-soon"]["name"] == "快到期"
    # due = patrol time + 20 min, in RFC 3339 local time.
    lp = datetime.fromisoformat(by["s-soon"]["last_patrol"]["ts"])
    assert datetime.fromisoformat(by["s-soon"]["due"]) - lp == timedelta(minutes=20)
    assert by["s-soon"]["due"].endswith("+08:00")
    assert by["s-over"]["state"] == "overdue" and by["s-over"]["last_patrol"] is None
    assert by["s-pause"]["state"] == "paused" and by["s-pause"]["due"] is None
    assert by["s-inact"]["state"] == "inactive"
    assert all(by[f"c{i:03d}"]["last_patrol"]["worker"].startswith("w") for i in range(10))

    raw = cli(d, "status", "--format", "csv").stdout
    assert raw.startswith(b"\xef\xbb\xbfid,name,state,last_patrol_ts,last_patrol_worker,due\r\n")
    text = cli(d, "status").stdout.decode()
    assert "即将到期" in text and "超时" in text and "暂停" in text
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (3) events, rejected and alerts: filters and formats
# --------------------------------------------------------------------------

def test_listings_filters_and_formats(make_daemon, broker, tmp_path):
    ok = Recorder(str(tmp_path / "ok"))
    stuck = Recorder(str(tmp_path / "stuck"))
    alerts = ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
              "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n  sinks:\n"
              + record_sink("wechat", ok.dir) + record_sink("stuck", stuck.dir, "until-ok"))
    cells = "cells:\n  - { id: yh-01, interval: 1d }\n  - { id: yh-02, interval: 1d }\n"
    d = make_daemon(cells=cells, events=EVENTS, extra=alerts).start()

    Y = datetime.now(SH).date() - timedelta(days=1)
    send(broker, "yh-01", "w017", "checkin", ts(Y, 8), mid="e1")
    send(broker, "yh-01", "w021", "checkin", ts(Y, 9), mid="e2")
    send(broker, "yh-02", "w021", "litter", ts(Y, 10), mid="e3", note="=HYPERLINK(\"x\")")
    send(broker, "yh-02", "w017", "flood", ts(Y, 11), mid="e4", value=240.5)
    send(broker, "yh-01", "w017", "fishing", mid="e5", note="多行\n备注")
    publish(broker, "patrol/yh-99/w017/checkin", b'{"id":"r1"}')
    publish(broker, "patrol/yh-01/w017/checkin", b"\xff\xfe\x00bin")
    publish(broker, "patrol/yh-01/w017/nosuch", b'{"id":"r3"}')
    wait_for(lambda: d.count() == 5 and d.count("rejected") == 3, 15, "rows stored")

    ev = cli_json(d, "events")["events"]
    assert [e["msg_id"] for e in ev] == ["e1", "e2", "e3", "e4", "e5"]
    e4 = ev[3]
    assert e4["value"] == 240.5 and e4["ts"] == rfc(ts(Y, 11)) and e4["flags"] == "late"
    assert [e["msg_id"] for e in cli_json(d, "events", "--cell", "yh-01")["events"]] == \
        ["e1", "e2", "e5"]
    assert [e["msg_id"] for e in cli_json(d, "events", "--worker", "w021", "--type",
                                          "checkin")["events"]] == ["e2"]
    assert [e["msg_id"] for e in cli_json(d, "events", "--since", rfc(ts(Y, 9)), "--until",
                                          rfc(ts(Y, 11)))["events"]] == ["e2", "e3"]
    assert [e["msg_id"] for e in cli_json(d, "events", "--since", "today")["events"]] == ["e5"]
    assert [e["msg_id"] for e in cli_json(d, "events", "--since", Y.isoformat(), "--until",
                                          "today")["events"]] == ["e1", "e2", "e3", "e4"]
    assert [e["msg_id"] for e in cli_json(d, "events", "--limit", "2")["events"]] == \
        ["e4", "e5"]
    raw = cli(d, "events", "--format", "csv", "--cell", "yh-02").stdout
    assert raw.startswith(b"\xef\xbb\xbfid,ts,cell,worker,type,")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["msg_id"] for r in rows] == ["e3", "e4"]
    assert rows[0]["note"] == "'=HYPERLINK(\"x\")"  # no formula in a spreadsheet
    text = cli(d, "events").stdout.decode()
    assert "时间" in text and "多行\\n备注" in text and "共 5 条" in text
    out = tmp_path / "events.json"
    cli(d, "events", "--format", "json", "-o", str(out))
    assert len(json.loads(out.read_text())["events"]) == 5

    rej = cli_json(d, "rejected")["rejected"]
    assert [r["reason"] for r in rej] == ["unknown_cell", "bad_json", "unknown_event"]
    assert rej[1]["payload_binary"] is True and rej[1]["payload"] == "\\xff\\xfe\\x00bin"
    assert rej[0]["payload"] == '{"id":"r1"}' and rej[0]["payload_binary"] is False
    only = cli_json(d, "rejected", "--reason", "unknown_event", "--since", "today")
    assert [r["topic"] for r in only["rejected"]] == ["patrol/yh-01/w017/nosuch"]
    assert cli_json(d, "rejected", "--since", "tomorrow")["rejected"] == []
    text = cli(d, "rejected").stdout.decode()
    assert "\\xff\\xfe\\x00bin" in text and "unknown_cell" in text
    assert cli(d, "rejected", "--format", "csv").stdout.startswith(b"\xef\xbb\xbfid,recv,")

    # The fishing alert: delivered to wechat, still failing on "stuck".
    wait_for(lambda: ok.alerts("event") and stuck.tries(), 15, "deliveries tried")
    al = cli_json(d, "alerts")["alerts"]
    fish = [a for a in al if a["kind"] == "event"]
    assert len(fish) == 1 and fish[0]["cell"] == "yh-01" and "水库钓鱼" in fish[0]["text"]
    states = {x["sink"]: x for x in fish[0]["delivery"]}
    assert states["wechat"]["state"] == "delivered"
    assert states["stuck"]["state"] in ("pending", "inflight")
    assert states["wechat"]["delivery_id"].startswith("wechat-")
    pend = cli_json(d, "alerts", "--pending")["alerts"]
    assert fish[0]["id"] in [a["id"] for a in pend]
    text = cli(d, "alerts", "--since", "today").stdout.decode()
    assert "已送达" in text and "event" in text
    assert cli(d, "alerts", "--format", "csv").stdout.startswith(b"\xef\xbb\xbfid,at,kind,")
    open(os.path.join(stuck.dir, "ok"), "w").close()
    wait_for(lambda: not cli_json(d, "alerts", "--pending")["alerts"], 20, "all delivered")
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (4) pause and resume, honoured by the running daemon
# --------------------------------------------------------------------------

def test_pause_resume_honoured_by_daemon(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    cell = ("  - id: {0}\n    name: \"测试网格 {0}\"\n    interval: 3s\n    grace: 0s\n"
            "    repeat: 1h\n    active: always\n")
    alerts = ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
              "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n  sinks:\n"
              + record_sink("wechat", rec.dir))
    d = make_daemon(cells="cells:\n" + cell.format("yh-01") + cell.format("yh-02"),
                    events=EVENTS, extra=alerts).start()
    r = cli(d, "pause", "yh-01", "--reason", "道路塌方")
    assert "yh-01" in r.stdout.decode()
    assert d.query("SELECT cell, until, reason FROM pause") == [("yh-01", None, "道路塌方")]
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue of the unpaused cell")
    publish(broker, "patrol/yh-02/w017/fishing", b'{"id":"sync"}')
    wait_for(lambda: rec.alerts("event"), 10, "sync event")
    assert [a["cell"] for a in rec.alerts("overdue")] == ["yh-02"]
    assert {c["id"]: c["state"] for c in cli_json(d, "status")["cells"]}["yh-01"] == "paused"

    cli(d, "resume", "yh-01")
    # The row stays, ended now: its end is the cell's base from here on.
    (until,), = d.query("SELECT until FROM pause WHERE cell = 'yh-01'")
    assert abs(until - time.time()) < 60
    wait_for(lambda: any(a["cell"] == "yh-01" for a in rec.alerts("overdue")), 15,
             "overdue after resume")
    assert "not paused" in cli(d, "resume", "yh-02").stdout.decode() or \
        "没有暂停" in cli(d, "resume", "yh-02").stdout.decode()

    # A bounded pause records its end; unknown cells and past ends are refused.
    cli(d, "pause", "yh-02", "--until", "+2h")
    (until,), = d.query("SELECT until FROM pause WHERE cell = 'yh-02'")
    assert abs(until - (time.time() + 7200)) < 60
    one_line_error(cli(d, "pause", "nosuch", check=False))
    one_line_error(cli(d, "resume", "nosuch", check=False))
    one_line_error(cli(d, "pause", "yh-01", "--until", "yesterday", check=False))
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (5) backup while the daemon writes
# --------------------------------------------------------------------------

def test_backup_while_daemon_writes(make_daemon, broker, tmp_path):
    d = make_daemon(cells=[f"c{i:03d}" for i in range(20)], events=EVENTS).start()
    load = sim_start(broker, 30000, "--cells-n", "20", "--rate", "5000")
    try:
        wait_for(lambda: d.count() > 2000, 30, "ingest under way")
        copy = tmp_path / "backup.db"
        t0 = time.monotonic()
        cli(d, "backup", str(copy))
        took = time.monotonic() - t0
        during = d.count()
    finally:
        assert load.wait(120) == 0, load.stderr.read()
    con = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    n = con.execute("SELECT count(*) FROM event").fetchone()[0]
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA user_version").fetchone()[0] >= 2
    con.close()
    print(f"\nbackup of {n} events taken in {took:.2f} s while ingesting")
    assert 2000 < n <= during and n < 30000
    # The copy is a consistent snapshot: ids are dense from 1 to n.
    con = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    assert con.execute("SELECT min(id), max(id) FROM event").fetchone() == (1, n)
    con.close()
    wait_for(lambda: d.count() == 30000, 60, "all stored after the backup")
    one_line_error(cli(d, "backup", str(copy), check=False))  # refuses to overwrite
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (6) errors: one line on stderr, exit 2
# --------------------------------------------------------------------------

def test_errors_are_one_line_exit_2(make_daemon, broker, tmp_path):
    d = make_daemon(cells=["yh-01"], events=EVENTS).start()
    wait_for(lambda: os.path.exists(d.db), 10, "database")
    for args in (["events", "--bogus"], ["report", "-x"], ["frobnicate"], [],
                 ["report", "--date", "2026-02-30"], ["report", "--date", "someday"],
                 ["events", "--since", "2026-13-01"], ["events", "--until", "12:00"],
                 ["events", "--limit", "many"], ["status", "--format", "xml"],
                 ["events", "--format", "html"], ["status", "--date", "today"],
                 ["events", "--since"], ["backup"], ["pause", "yh-01", "extra"]):
        one_line_error(cli(d, *args, check=False))
    missing = str(tmp_path / "nope.db")
    err = one_line_error(cli(d, "status", check=False, db=missing))
    assert f"no database at {missing}" in err
    assert not os.path.exists(missing)
    one_line_error(cli(d, "report", check=False, db=missing))
    one_line_error(subprocess.run([GRIDPATROL, "-c", str(tmp_path / "none.yaml"), "status"],
                                  capture_output=True))
    r = subprocess.run([GRIDPATROL, "--version"], capture_output=True)
    assert r.returncode == 0 and r.stdout.decode().startswith("gridpatrol ")
    r = subprocess.run([GRIDPATROL, "--help"], capture_output=True)
    assert r.returncode == 0 and b"report" in r.stdout and b"backup" in r.stdout
    r = subprocess.run([GRIDPATROL, "events", "--help"], capture_output=True)
    assert r.returncode == 0 and b"--limit" in r.stdout
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (7) the HTML page rendered by a real browser
# --------------------------------------------------------------------------

def png_pixels(path):
    """(width, height, set of distinct RGB colours) of a PNG, sampled every
    4th row and every 2nd pixel."""
    with open(path, "rb") as f:
        w, h, rows = png_decode(f.read())
    colours = {rows[y][x:x + 3] for y in range(0, h, 4) for x in range(0, 3 * w, 6)}
    return w, h, colours


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_html_report_renders_in_chromium(make_daemon, broker, tmp_path):
    d, D = build_fixture_day(make_daemon, broker)
    page = tmp_path / "report.html"
    cli(d, "report", "--date", D.isoformat(), "--format", "html", "-o", str(page))
    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", f"--screenshot={shot}",
                        "--window-size=1240,1754", f"file://{page}"],
                       capture_output=True, timeout=120)
    assert shot.exists(), r.stderr.decode(errors="replace")[-2000:]
    size = shot.stat().st_size
    w, h, colours = png_pixels(str(shot))
    print(f"\nHTML report screenshot: {w}x{h}, {size} bytes, {len(colours)} colours sampled")
    assert (w, h) == (1240, 1754)
    assert size > 20 * 1024
    assert len(colours) > 20
    # The chart's patrolled green and overdue red hatching are on the page.
    assert bytes((0x1b, 0x5e, 0x20)) in colours
    assert any(r > 150 and g < 80 and b < 80 for r, g, b in colours)
    shutil.rmtree(profile, ignore_errors=True)
    if os.environ.get("GRIDPATROL_KEEP_SHOT"):
        shutil.copy(shot, os.environ["GRIDPATROL_KEEP_SHOT"])
    assert d.stop() == 0
