"""Claims (SPEC, Claims) end to end: real broker, real daemon, the record
sink, second-scale intervals. A claim-type message claims the cell's open
alert, the group hears it, reminders wait while the claim holds and resume
saying so, and the recovery names the claimer."""
import datetime
import json
import os
import sqlite3
import subprocess
import time

from harness import DEFAULT_EVENTS, Recorder, publish, record_sink, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")

CLAIM_EVENTS = DEFAULT_EVENTS + '  claim: { label: "认领", claim: true, patrol: false }\n'


def cfg(rec, claim_for="6s", escalate=""):
    return ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
            f"  claim_for: {claim_for}\n{escalate}"
            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
            "  sinks:\n" + record_sink("wechat", rec.dir))


def cell(cid="yh-01", interval="3s", grace="1s", repeat="2s"):
    return (f"cells:\n  - id: {cid}\n    name: \"测试网格 {cid}\"\n    interval: {interval}\n"
            f"    grace: {grace}\n    repeat: {repeat}\n    active: always\n"
            "    workers: [w017, w021]\n")


def rfc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def epoch(s):
    return datetime.datetime.fromisoformat(s).timestamp()


def marker(broker, rec, n=1):
    """Publish an event alert on yh-02 after what is under test and wait
    for it: what the daemon was to send before it has been sent."""
    publish(broker, "patrol/yh-02/w021/fishing", json.dumps({"id": f"marker{n}"}).encode())
    wait_for(lambda: len(rec.alerts("event")) >= n, 10, "the marker event alert")


YH02 = "  - id: yh-02\n    interval: 1d\n    active: always\n"


def test_claim_holds_reminders_then_they_resume(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(), events=CLAIM_EVENTS,
                    extra=cfg(rec, escalate="  escalate: { after: 1, to: [secretary] }\n")).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "first overdue alert")
    first = rec.alerts("overdue")[0]
    publish(broker, "patrol/yh-01/w017/claim", b'{"id":"c1"}')
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert")
    c = rec.alerts("claimed")[0]
    assert c["cell"] == "yh-01"
    assert c["claim"]["by"] == "w017" and c["claim"]["kind"] == "overdue"
    assert "w017 已于" in c["text"] and "认领测试网格 yh-01的巡查提醒" in c["text"], c["text"]
    assert "6秒 内不再重复提醒" in c["text"] or "内不再重复提醒" in c["text"], c["text"]
    claimed_id = c["claim"]["alert_id"]
    (by, at), = d.query("SELECT claimed_by, claimed_at FROM alert WHERE id = ?", (claimed_id,))
    assert by == "w017"
    assert d.query("SELECT kind FROM alert WHERE id = ?", (claimed_id,)) == [("overdue",)]

    # Held: no reminder until the claim runs out, then one that says so,
    # escalated (the held ones did not count), and more after it.
    wait_for(lambda: any("claim_ran_out" in a for a in rec.alerts("overdue")), 20,
             "the reminder after the claim ran out")
    over = rec.alerts("overdue")
    ran = next(a for a in over if "claim_ran_out" in a)
    assert ran["claim_ran_out"]["by"] == "w017"
    assert "w017 的认领已超过" in ran["text"] and "仍未巡查" in ran["text"], ran["text"]
    assert epoch(ran["at"]) >= at + 6
    assert ran["escalate"] == ["secretary"] and "并报 secretary" in ran["text"]
    # Held reminders were not raised, so they are not counted either.
    assert ran["repeat"] == d.count("alert", "kind = 'overdue' AND at <= ?", (at,))
    assert d.count("alert", "kind = 'overdue' AND at > ? AND at < ?", (at, at + 6)) == 0
    n = len(over)
    wait_for(lambda: len(rec.alerts("overdue")) > n, 10, "reminders resumed")
    later = rec.alerts("overdue")[n]
    assert "claim_ran_out" not in later and "认领" not in later["text"]
    assert later["repeat"] == ran["repeat"] + 1

    # Someone else patrols: the recovery names the claimer; the episode ends.
    publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"back"}')
    wait_for(lambda: rec.alerts("recovered"), 10, "recovered")
    r = rec.alerts("recovered")[0]
    assert r["claimed_by"] == "w017" and "（此前由 w017 认领）" in r["text"], r["text"]
    assert d.count("alert", "kind = 'overdue' AND resolved_at IS NULL") == 0
    assert d.count("alert", "kind = 'overdue' AND resolved_at >= at") == d.count(
        "alert", "kind = 'overdue'")
    assert first["repeat"] == 0
    assert d.stop() == 0


def test_claim_survives_sigkill(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(), events=CLAIM_EVENTS, extra=cfg(rec, claim_for="10s")).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "first overdue alert")
    publish(broker, "patrol/yh-01/w017/claim", b'{"id":"c1"}')
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert")
    (at,), = d.query("SELECT claimed_at FROM alert WHERE claimed_by = 'w017'")
    d.kill()
    d.start()
    wait_for(lambda: any("claim_ran_out" in a for a in rec.alerts("overdue")), 25,
             "the reminder after the claim ran out, after a restart")
    ran = next(a for a in rec.alerts("overdue") if "claim_ran_out" in a)
    assert epoch(ran["at"]) >= at + 10
    assert ran["repeat"] == d.count("alert", "kind = 'overdue' AND at <= ?", (at,))
    # Nothing in between, and the claim was not announced twice.
    assert d.count("alert", "kind = 'overdue' AND at > ? AND at < ?", (at, at + 10)) == 0
    assert len(rec.alerts("claimed")) == 1
    assert d.stop() == 0


def test_flood_of_claims_raises_one_claimed(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(repeat="1h") + YH02, events=CLAIM_EVENTS,
                    extra=cfg(rec, claim_for="1h")).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    for i in range(20):
        w = "w017" if i % 2 else "w021"
        publish(broker, f"patrol/yh-01/{w}/claim", json.dumps({"id": f"c{i}"}).encode())
    wait_for(lambda: d.count("event", "type = 'claim'") == 20, 15, "twenty claims stored")
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert")
    marker(broker, rec)
    assert len(rec.alerts("claimed")) == 1
    assert d.count("alert", "kind = 'claimed'") == 1
    assert d.count("alert", "claimed_by IS NOT NULL") == 1
    # The first claim stored is the one that counts.
    (first,), = d.query("SELECT worker FROM event WHERE type = 'claim' ORDER BY id LIMIT 1")
    assert d.query("SELECT claimed_by FROM alert WHERE claimed_by IS NOT NULL") == [(first,)]
    assert d.stop() == 0


def test_claim_of_an_earlier_reminder_of_a_claimed_episode(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell() + YH02, events=CLAIM_EVENTS,
                    extra=cfg(rec, claim_for="1h")).start()
    wait_for(lambda: len(rec.alerts("overdue")) >= 2, 20, "a reminder")
    rows = d.query("SELECT id FROM alert WHERE kind = 'overdue' ORDER BY id")
    first, newest = rows[0][0], rows[-1][0]
    publish(broker, "patrol/yh-01/w017/claim",
            json.dumps({"id": "c1", "alert_id": newest}).encode())
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert")
    # The episode is the task: the claim sits on its first alert.
    assert rec.alerts("claimed")[0]["claim"]["alert_id"] == first
    (at,), = d.query("SELECT claimed_at FROM alert WHERE id = ?", (first,))
    publish(broker, "patrol/yh-01/w021/claim",
            json.dumps({"id": "c2", "alert_id": first}).encode())
    publish(broker, "patrol/yh-01/w021/claim",
            json.dumps({"id": "c3", "alert_id": newest}).encode())
    wait_for(lambda: d.count("event", "type = 'claim'") == 3, 10, "three claims stored")
    marker(broker, rec)
    assert len(rec.alerts("claimed")) == 1
    assert d.count("alert", "kind = 'claimed'") == 1
    assert d.query("SELECT id, claimed_by, claimed_at FROM alert WHERE claimed_by IS NOT NULL"
                   ) == [(first, "w017", at)]
    # Time to claim runs from the episode's first alert, not the one named.
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "alerts", "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    listed = {a["id"]: a for a in json.loads(r.stdout)["alerts"]}
    (first_at,), = d.query("SELECT at FROM alert WHERE id = ?", (first,))
    assert listed[first]["to_claim_s"] == at - first_at
    assert listed[newest]["claimed_by"] is None
    assert d.stop() == 0


def test_redelivered_claim_of_a_pruned_alert_is_a_duplicate(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(interval="1d") + YH02, events=CLAIM_EVENTS,
                    extra=cfg(rec, claim_for="1h")).start()
    publish(broker, "patrol/yh-02/w021/fishing", b'{"id":"fish"}')
    wait_for(lambda: rec.alerts("event"), 10, "event alert")
    (eid,), = d.query("SELECT id FROM alert WHERE kind = 'event'")
    claim_msg = json.dumps({"id": "ce", "alert_id": eid}).encode()
    publish(broker, "patrol/yh-02/w017/claim", claim_msg)
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert")
    con = sqlite3.connect(d.db, timeout=10)
    con.execute("DELETE FROM outbox WHERE alert_id = ?", (eid,))
    con.execute("DELETE FROM alert WHERE id = ?", (eid,))
    con.commit()
    con.close()
    publish(broker, "patrol/yh-02/w017/claim", claim_msg)
    marker(broker, rec, 2)
    assert d.count("rejected") == 0, d.query("SELECT reason, detail FROM rejected")
    assert d.count("event", "type = 'claim'") == 1
    assert len(rec.alerts("claimed")) == 1
    assert d.stop() == 0


def test_claim_before_its_alert_and_bad_alert_ids(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    cells = cell(repeat="1h") + ("  - id: yh-02\n    interval: 1d\n    active: always\n")
    d = make_daemon(cells=cells, events=CLAIM_EVENTS, extra=cfg(rec, claim_for="1h")).start()
    now = int(time.time())
    # Nothing open in yh-02: stored, nothing else.
    publish(broker, "patrol/yh-02/w017/claim", b'{"id":"nothing-open"}')
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    (aid, aat), = d.query("SELECT id, at FROM alert WHERE kind = 'overdue'")

    # A claim made before the alert, uploaded late: kept, claims nothing,
    # also when it names the alert.
    publish(broker, "patrol/yh-01/w017/claim",
            json.dumps({"id": "early", "ts": rfc(now - 60)}).encode())
    publish(broker, "patrol/yh-01/w017/claim",
            json.dumps({"id": "early2", "ts": rfc(now - 30), "alert_id": aid}).encode())
    # Unknown alert, another cell's alert, not a task: rejected as bad_field.
    publish(broker, "patrol/yh-01/w017/claim", b'{"id":"u","alert_id":99999}')
    publish(broker, "patrol/yh-02/w017/claim",
            json.dumps({"id": "x", "alert_id": aid}).encode())
    publish(broker, "patrol/yh-01/w017/claim", b'{"id":"f","alert_id":"1"}')
    wait_for(lambda: d.count("rejected") == 3, 10, "three rejections")
    rows = d.query("SELECT reason, detail FROM rejected ORDER BY id")
    assert rows[0] == ("bad_field", "alert_id 99999: no such alert"), rows
    assert rows[1] == ("bad_field", f"alert_id {aid} is for cell yh-01, not yh-02"), rows
    assert rows[2] == ("bad_field", "alert_id must be a positive integer"), rows
    wait_for(lambda: d.count("event", "type = 'claim'") == 3, 10, "three claims stored")
    marker(broker, rec)
    assert rec.alerts("claimed") == []
    assert d.count("alert", "claimed_by IS NOT NULL") == 0

    # An event alert is a task too; a patrol of the cell ends it.
    publish(broker, "patrol/yh-02/w021/fishing", b'{"id":"fish"}')
    wait_for(lambda: len(rec.alerts("event")) >= 2, 10, "event alert")
    (eid,), = d.query("SELECT id FROM alert WHERE kind = 'event' ORDER BY id DESC LIMIT 1")
    publish(broker, "patrol/yh-02/w017/claim", json.dumps({"id": "ce", "alert_id": eid}).encode())
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed event alert")
    c = rec.alerts("claimed")[0]
    assert c["claim"] == {"alert_id": eid, "kind": "event", "by": "w017", "at": c["claim"]["at"]}
    assert "的事件提醒" in c["text"] and "不再重复" not in c["text"], c["text"]
    assert d.query("SELECT claimed_by, resolved_at FROM alert WHERE id = ?", (eid,)) == [
        ("w017", None)]
    publish(broker, "patrol/yh-02/w017/checkin", b'{"id":"went"}')
    wait_for(lambda: d.query("SELECT resolved_at IS NOT NULL FROM alert WHERE id = ?",
                             (eid,)) == [(1,)], 10, "event alert resolved")
    assert d.stop() == 0


def claim(d, *args):
    return subprocess.run([GRIDPATROL, "-c", d.conf, "claim", *args], capture_output=True,
                          text=True, timeout=30)


def test_claim_from_the_office(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(), events=CLAIM_EVENTS, extra=cfg(rec, claim_for="8s")).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "first overdue alert")
    r = claim(d, "yh-01", "--by", "张书记")
    assert r.returncode == 0, r.stderr
    assert "张书记 认领 yh-01（测试网格 yh-01）的巡查提醒" in r.stdout, r.stdout
    started = time.time()
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert from the office")
    assert time.time() - started < 5
    c = rec.alerts("claimed")[0]
    assert c["claim"]["by"] == "张书记" and "张书记 已于" in c["text"], c["text"]
    assert d.count("claim_request") == 0
    (at,), = d.query("SELECT claimed_at FROM alert WHERE claimed_by = '张书记'")
    # Held like a device's claim, and the same alert is not claimed twice.
    r = claim(d, str(c["claim"]["alert_id"]), "--by", "w017")
    assert r.returncode == 0 and "已由 张书记 认领" in r.stdout, (r.stdout, r.stderr)
    wait_for(lambda: any("claim_ran_out" in a for a in rec.alerts("overdue")), 20,
             "the reminder after the office's claim ran out")
    ran = next(a for a in rec.alerts("overdue") if "claim_ran_out" in a)
    assert ran["claim_ran_out"]["by"] == "张书记"
    assert ran["repeat"] == d.count("alert", "kind = 'overdue' AND at <= ?", (at,))
    assert len(rec.alerts("claimed")) == 1

    # Wrong requests: exit 2, one line, nothing written.
    for args, err in [(["99999", "--by", "x"], "no alert 99999"),
                      (["yh-99", "--by", "x"], "neither a configured cell"),
                      (["yh-01"], "needs --by NAME"),
                      (["yh-01", "--by", ""], "--by must be"),
                      ([str(c["alert_id"]), "--by", "x"], "is a claimed alert")]:
        r = claim(d, *args)
        assert r.returncode == 2 and err in r.stderr, (args, r.returncode, r.stderr)
    assert d.count("claim_request") == 0

    # Nothing open: said, nothing written.
    publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"back"}')
    wait_for(lambda: rec.alerts("recovered"), 10, "recovered")
    assert rec.alerts("recovered")[0]["claimed_by"] == "张书记"

    # `alerts` shows the claimer, the time to claim and to resolve.
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "alerts", "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rows = {a["id"]: a for a in json.loads(r.stdout)["alerts"]}
    (aat, cat, rat), = d.query("SELECT at, claimed_at, resolved_at FROM alert "
                               "WHERE claimed_by = '张书记'")
    mine = rows[c["claim"]["alert_id"]]
    assert mine["claimed_by"] == "张书记" and epoch(mine["claimed_at"]) == cat
    assert mine["to_claim_s"] == cat - aat and mine["to_resolve_s"] == rat - aat
    assert rows[c["alert_id"]]["claimed_by"] is None
    assert rows[c["alert_id"]]["to_resolve_s"] is None
    text = subprocess.run([GRIDPATROL, "-c", d.conf, "alerts"], capture_output=True,
                          text=True, timeout=30).stdout
    assert "认领人" in text and "处理用时" in text and "张书记" in text
    r = claim(d, "yh-01", "--by", "w017")
    assert r.returncode == 0 and "没有待认领的提醒" in r.stdout, (r.stdout, r.stderr)
    assert d.count("claim_request") == 0
    assert d.stop() == 0


def test_office_claim_made_while_the_daemon_is_down(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cell(repeat="1h"), events=CLAIM_EVENTS,
                    extra=cfg(rec, claim_for="1h")).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    assert d.stop() == 0
    r = claim(d, "yh-01", "--by", "w021")
    assert r.returncode == 0, r.stderr
    assert d.count("claim_request") == 1
    d.start()
    wait_for(lambda: rec.alerts("claimed"), 10, "claimed alert after the start")
    assert rec.alerts("claimed")[0]["claim"]["by"] == "w021"
    assert d.count("claim_request") == 0
    assert d.stop() == 0


def test_workers_sheet_hand_computed(make_daemon, broker, tmp_path):
    """`gridpatrol workers` on a fixture whose figures were worked out by
    hand (times are Asia/Shanghai, the day is 2026-11-24)."""
    rec = Recorder(str(tmp_path / "sink"))
    cells = ("cells:\n  - id: yh-01\n    workers: [w017, w021]\n"
             "  - id: yh-02\n    workers: [w021, w030]\n")
    d = make_daemon(cells=cells, events=CLAIM_EVENTS, extra=cfg(rec)).start()
    assert d.stop() == 0
    tz = datetime.timezone(datetime.timedelta(hours=8))

    def t(day, hh, mm, ss=0):
        return int(datetime.datetime(2026, 11, day, hh, mm, ss, tzinfo=tz).timestamp())

    events = [  # worker, cell, type, ts, flags
        ("w017", "yh-01", "checkin", t(23, 23, 59, 30), ""),  # the day before
        ("w017", "yh-01", "checkin", t(24, 0, 0, 10), ""),    # 40 s after it: rapid
        ("w017", "yh-01", "checkin", t(24, 8, 0, 0), ""),
        ("w017", "yh-01", "checkin", t(24, 8, 0, 30), ""),    # 30 s: rapid
        ("w017", "yh-01", "checkin", t(24, 8, 1, 31), ""),    # 61 s: not rapid
        ("w017", "yh-01", "claim", t(24, 8, 1, 35), ""),      # not a patrol
        ("w017", "yh-01", "litter", t(24, 8, 1, 40), ""),     # 9 s after 08:01:31: rapid
        ("w017", "yh-02", "checkin", t(24, 9, 0, 0), "late"),
        ("w021", "yh-02", "fishing", t(24, 10, 0, 0), "late,clock_skew"),
        ("w021", "yh-02", "checkin", t(24, 10, 0, 59), ""),   # 59 s: rapid
        ("w021", "yh-01", "checkin", t(24, 10, 1, 0), ""),    # another cell
        ("w099", "yh-01", "checkin", t(25, 9, 0, 0), ""),     # the day after
    ]
    alerts = [  # at, claimed_by, claimed_at, resolved_at
        (t(24, 8, 0), "w017", t(24, 8, 10), t(24, 9, 0)),     # 600 s, 3600 s
        (t(24, 11, 0), "w017", t(24, 11, 2), t(24, 11, 30)),  # 120 s, 1800 s
        (t(24, 12, 0), "w017", t(24, 12, 30), None),          # 1800 s, open
        (t(24, 13, 0), "张书记", t(24, 13, 5), t(24, 14, 0)),  # 300 s, 3600 s
        (t(23, 19, 0), "w021", t(23, 20, 0), None),           # the day before
        (t(24, 15, 0), None, None, None),                     # never claimed
    ]
    con = sqlite3.connect(d.db)
    con.executemany("INSERT INTO event (worker, msg_id, cell, type, ts, recv_ms, flags, raw) "
                    "VALUES (?, NULL, ?, ?, ?, ?, ?, '{}')",
                    [(w, c, ty, ts, ts * 1000, fl) for w, c, ty, ts, fl in events])
    con.executemany("INSERT INTO alert (kind, cell, at, text, doc, claimed_by, claimed_at, "
                    "resolved_at) VALUES ('overdue', 'yh-01', ?, 't', '{}', ?, ?, ?)", alerts)
    con.commit()
    con.close()

    def sheet(*args):
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "workers", *args, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return {w["worker"]: w for w in json.loads(r.stdout)["workers"]}

    day = sheet("--date", "2026-11-24")
    assert sorted(day) == ["w017", "w021", "w030", "张书记"]
    assert day["w017"] == {
        "worker": "w017", "patrols": 6, "cells": 2,
        "events": {"checkin": 5, "claim": 1, "litter": 1}, "late": 1, "claims": 3,
        "median_to_claim_s": 600, "median_to_resolve_s": 2700, "rapid": 3}
    assert day["w021"] == {
        "worker": "w021", "patrols": 3, "cells": 2, "events": {"checkin": 2, "fishing": 1},
        "late": 1, "claims": 0, "median_to_claim_s": None, "median_to_resolve_s": None,
        "rapid": 1}
    assert day["w030"] == {
        "worker": "w030", "patrols": 0, "cells": 0, "events": {}, "late": 0, "claims": 0,
        "median_to_claim_s": None, "median_to_resolve_s": None, "rapid": 0}
    assert day["张书记"]["claims"] == 1 and day["张书记"]["median_to_claim_s"] == 300
    assert day["张书记"]["median_to_resolve_s"] == 3600 and day["张书记"]["patrols"] == 0

    two = sheet("--from", "2026-11-23", "--to", "2026-11-24")
    assert two["w017"]["patrols"] == 7 and two["w017"]["rapid"] == 3
    assert two["w017"]["events"]["checkin"] == 6
    assert two["w021"]["claims"] == 1 and two["w021"]["median_to_claim_s"] == 3600
    assert two["w021"]["median_to_resolve_s"] is None
    assert "w099" not in two

    r = subprocess.run([GRIDPATROL, "-c", d.conf, "workers", "--date", "2026-11-24",
                        "--format", "csv"], capture_output=True, timeout=30)
    assert r.stdout.startswith(b"\xef\xbb\xbfworker,patrols,cells,events,late,claims,"
                               b"median_to_claim_s,median_to_resolve_s,rapid")
    assert b"w017,6,2,checkin:5;claim:1;litter:1,1,3,600,2700,3" in r.stdout, r.stdout
    text = subprocess.run([GRIDPATROL, "-c", d.conf, "workers", "--date", "2026-11-24"],
                          capture_output=True, text=True, timeout=30).stdout
    assert "巡查签到 5" in text and "10分" in text and "45分" in text, text
    for bad in (["--date", "2026-11-24", "--from", "2026-11-23"], ["--from", "2026-11-23"],
                ["--from", "2026-11-24", "--to", "2026-11-23"]):
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "workers", *bad], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_report_claims_hand_computed(make_daemon, broker, tmp_path):
    """`gridpatrol report`'s claims figures and HTML table on alerts written
    by hand (Asia/Shanghai, the day 2026-11-24): the tasks are the day's
    event and reading alerts and the overdue episodes begun that day, each
    claimed when any alert of it was — the digest's rule."""
    import html.parser
    import shutil
    rec = Recorder(str(tmp_path / "sink"))
    cells = ("cells:\n  - id: yh-01\n    name: \"云华 1号\"\n    workers: [w017]\n"
             "  - id: yh-02\n    name: \"云华 2号\"\n    workers: [w021]\n")
    d = make_daemon(cells=cells, events=CLAIM_EVENTS, extra=cfg(rec)).start()
    assert d.stop() == 0
    tz = datetime.timezone(datetime.timedelta(hours=8))

    def t(day, hh, mm, ss=0):
        return int(datetime.datetime(2026, 11, day, hh, mm, ss, tzinfo=tz).timestamp())

    alerts = [  # kind, cell, at, repeat, claimed_by, claimed_at, resolved_at
        # An overdue episode of the day before: not the day's.
        ("overdue", "yh-01", t(23, 22, 0), 0, "w017", t(23, 22, 5), t(23, 23, 0)),
        # One begun the day before, repeated into the day: not the day's.
        ("overdue", "yh-02", t(23, 23, 50), 0, None, None, t(24, 0, 30)),
        ("overdue", "yh-02", t(24, 0, 10), 1, None, None, t(24, 0, 30)),
        # Task 1: the episode's repeat was claimed (08:25), patrol at 09:00.
        ("overdue", "yh-01", t(24, 8, 0), 0, None, None, t(24, 9, 0)),
        ("overdue", "yh-01", t(24, 8, 20), 1, "w017", t(24, 8, 25), t(24, 9, 0)),
        ("claimed", "yh-01", t(24, 8, 25), 0, None, None, None),      # not a task
        ("recovered", "yh-01", t(24, 9, 0), 0, None, None, None),     # not a task
        # Task 2: an event alert claimed at once, never resolved.
        ("event", "yh-02", t(24, 10, 0), 0, "张书记", t(24, 10, 0), None),
        # Task 3: a reading alert nobody claimed, resolved after 2 h.
        ("reading", "yh-02", t(24, 14, 0), 0, None, None, t(24, 16, 0)),
        # Task 4: an overdue episode still open, unclaimed.
        ("overdue", "yh-01", t(24, 22, 0), 0, None, None, None),
        ("overdue", "yh-01", t(24, 22, 30), 1, None, None, None),
        # The next day: not the day's.
        ("event", "yh-01", t(25, 0, 5), 0, None, None, None),
    ]
    con = sqlite3.connect(d.db)
    con.executemany("INSERT INTO alert (kind, cell, at, repeat, text, doc, claimed_by, "
                    "claimed_at, resolved_at) VALUES (?, ?, ?, ?, 't', '{}', ?, ?, ?)", alerts)
    con.commit()
    con.close()

    def report(*args, dbs=()):
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "report", *dbs, "--date", "2026-11-24",
                            *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    summary = json.loads(report("--format", "json"))["summary"]
    assert (summary["alerts_claimed"], summary["alerts_unclaimed"]) == (2, 2), summary
    text = report()
    assert text.rstrip("\n").endswith("待处理提醒 4 项：已认领 2 项，未认领 2 项。"), text
    # CSV has no summary: it stays one row per cell.
    assert "claim" not in report("--format", "csv")

    # The HTML table, cell by cell.
    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.inside, self.cell = [], False, None

        def handle_starttag(self, tag, attrs):
            if tag == "table" and ("class", "tasks") in attrs:
                self.inside = True
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag == "table":
                self.inside = False
            elif self.inside and tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    page = report("--format", "html")
    p = Cells()
    p.feed(page)
    assert p.rows == [
        ["提醒时间", "网格", "类型", "认领人", "认领用时", "处理用时"],
        ["08:00", "云华 1号", "超时", "w017", "25分", "1小时"],
        ["10:00", "云华 2号", "事件", "张书记", "不到1分钟", "未结束"],
        ["14:00", "云华 2号", "读数", "未认领", "—", "2小时"],
        ["22:00", "云华 1号", "超时", "未认领", "—", "未结束"],
    ], p.rows
    assert "待处理提醒 4 项：已认领 2 项，未认领 2 项。" in page

    # As Chromium reads it (the DOM, not the source), when it is there.
    if os.path.exists("/usr/bin/chromium"):
        path = tmp_path / "report.html"
        path.write_text(page, encoding="utf-8")
        profile = tmp_path / "chromium-profile"
        r = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", "--dump-dom", f"file://{path}"],
                           capture_output=True, text=True, timeout=120)
        shutil.rmtree(profile, ignore_errors=True)
        dom = Cells()
        dom.feed(r.stdout)
        assert dom.rows == p.rows, r.stderr[-2000:]

    # A county report: the same database twice is two sites, per site and
    # in all; the table names each row's site.
    county = ["--db", f"home={d.db}", "--db", f"twin={d.db}"]
    doc = json.loads(report("--format", "json", dbs=county))
    for site in doc["sites"]:
        assert (site["summary"]["alerts_claimed"], site["summary"]["alerts_unclaimed"]) == (2, 2)
    assert (doc["summary"]["alerts_claimed"], doc["summary"]["alerts_unclaimed"]) == (4, 4)
    lines = report(dbs=county).rstrip("\n").split("\n")
    assert lines[-1].startswith("合计：") and lines[-1].endswith(
        "待处理提醒 8 项：已认领 4 项，未认领 4 项。"), lines
    p = Cells()
    p.feed(report("--format", "html", dbs=county))
    assert len(p.rows) == 9 and p.rows[1][0] == p.rows[2][0] == "08:00", p.rows
    assert [p.rows[1][1], p.rows[2][1]] == ["home · 云华 1号", "twin · 云华 1号"], p.rows
