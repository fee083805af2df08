"""Deadlines and alerts end to end: real broker, real daemon, real exec sink
(tests/system/record-sink), intervals of seconds."""
import datetime
import json
import os
import subprocess
import time

from harness import Recorder, publish, record_sink, wait_for


def sqlite_cli(d, sql):
    """Runs sql with the sqlite3 shell, as an operator would, beside the
    running daemon. The shell fails at once on a locked database by default;
    the daemon holds the write lock for each batch (and retention), so wait
    as any well-behaved second writer must."""
    subprocess.run(["sqlite3", "-cmd", ".timeout 10000", d.db, sql], check=True)


def alerts_cfg(sinks, extra=""):
    return ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
            f"{extra}  sinks:\n{sinks}")


def fast_cell(cid, interval="3s", grace="1s", repeat="3s", workers="[w017, w021]"):
    return (f"  - id: {cid}\n    name: \"测试网格 {cid}\"\n    interval: {interval}\n"
            f"    grace: {grace}\n    repeat: {repeat}\n    active: always\n"
            f"    workers: {workers}\n")


def test_overdue_repeats_then_recovered(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
    started = time.time()
    wait_for(lambda: rec.alerts("overdue"), 15, "first overdue alert")
    first = rec.alerts("overdue")[0]
    assert first["cell"] == "yh-01" and first["repeat"] == 0
    assert first["cell_name"] == "测试网格 yh-01"
    assert first["workers"] == ["w017", "w021"]
    assert "w017、w021" in first["text"] and "测试网格 yh-01" in first["text"]
    # Overdue at known_since + 3 s interval + 1 s grace.
    assert 3.0 <= time.time() - started
    wait_for(lambda: len(rec.alerts("overdue")) >= 3, 20, "two repeats")
    over = rec.alerts("overdue")
    assert [a["repeat"] for a in over[:3]] == [0, 1, 2]
    docs = rec.delivered()
    t = [time.mktime(time.strptime(a["at"][:19], "%Y-%m-%dT%H:%M:%S")) for a in over[:3]]
    assert 2 <= t[1] - t[0] <= 5 and 2 <= t[2] - t[1] <= 5, t
    # The environment mirrors the document.
    env = rec.env(docs[0]["delivery_id"])
    assert env["GRIDPATROL_DELIVERY_ID"] == docs[0]["delivery_id"]
    assert env["GRIDPATROL_KIND"] == "overdue"
    assert env["GRIDPATROL_TEXT"] == docs[0]["text"]
    assert docs[0]["sink"] == "wechat"

    publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"back"}')
    wait_for(lambda: rec.alerts("recovered"), 10, "recovered alert")
    r = rec.alerts("recovered")[0]
    assert r["patrol"]["worker"] == "w021" and "w021" in r["text"]
    n = len(rec.alerts("overdue"))
    # Once recovered, the cell is quiet until its next deadline.
    assert d.count("alert", "kind='overdue'") == n
    assert d.stop() == 0
    rows = d.query("SELECT state FROM delivery")
    assert rows and all(s == "delivered" for (s,) in rows)


def test_immediate_event_and_reading_levels(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="1d"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
    t0 = time.time()
    publish(broker, "patrol/yh-01/w017/fishing",
            '{"id":"f1","note":"库湾有人垂钓"}'.encode())
    wait_for(lambda: rec.alerts("event"), 10, "event alert")
    latency = time.time() - t0
    print(f"\nfishing → event alert delivered in {latency * 1000:.0f} ms (incl. mosquitto_pub start)")
    ev = rec.alerts("event")[0]
    assert ev["event_type"] == "fishing" and ev["note"] == "库湾有人垂钓"
    assert "水库钓鱼" in ev["text"]

    for i, v in enumerate([200, 260, 310, 320, 240, 200]):
        publish(broker, "patrol/yh-01/w017/flood", b'{"id":"r%d","value":%d}' % (i, v))
    wait_for(lambda: d.count() >= 7, 10, "readings stored")
    wait_for(lambda: len(rec.alerts("reading")) + len(rec.alerts("recovered")) >= 3, 10,
             "reading alerts")
    # Give nothing more a chance: a final event proves the pipeline drained.
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"f2"}')
    wait_for(lambda: len(rec.alerts("event")) >= 2, 10, "second event alert")
    levels = [(a["kind"], a.get("level"), a.get("value")) for a in rec.alerts()
              if a["kind"] in ("reading", "recovered")]
    assert levels == [("reading", "warn", 260.0), ("reading", "alarm", 310.0),
                      ("recovered", "normal", 240.0)]
    assert d.stop() == 0


def test_restart_sends_no_duplicate_and_pending_survives_sigkill(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="2s", grace="0s", repeat="1h"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    assert d.stop() == 0
    d.start()
    # The pipeline is live (an event goes through) and the already delivered
    # overdue alert was not raised again.
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"after-restart"}')
    wait_for(lambda: rec.alerts("event"), 10, "event after restart")
    assert len(rec.alerts("overdue")) == 1
    assert d.count("alert", "kind='overdue'") == 1
    assert d.stop() == 0

    # A delivery that cannot get through survives SIGKILL.
    rec2 = Recorder(str(tmp_path / "sink2"))
    d.write_config("cells:\n" + fast_cell("yh-01", interval="2s", grace="0s", repeat="1h"),
                   extra=alerts_cfg(record_sink("wechat", rec2.dir, "until-ok")))
    d.start()
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"stuck"}')
    wait_for(lambda: len(rec2.tries()) >= 1, 10, "a failed try")
    d.kill()
    open(os.path.join(rec2.dir, "ok"), "w").close()
    d.start()
    wait_for(lambda: rec2.alerts("event"), 20, "pending delivery after SIGKILL")
    ids = {doc["delivery_id"] for _, doc, _ in rec2.tries()}
    assert len(ids) == 1  # same delivery_id on every try
    assert d.stop() == 0


def test_fifty_cells_in_one_grouped_delivery(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    cells = "cells:\n" + "".join(fast_cell(f"c{i:02d}", interval="2s", grace="0s", repeat="1h")
                                 for i in range(50))
    d = make_daemon(cells=cells, extra=alerts_cfg(
        record_sink("wechat", rec.dir, extra="      group_window: 2s\n"))).start()
    wait_for(lambda: rec.delivered(), 20, "grouped delivery")
    wait_for(lambda: d.count("alert") >= 50, 10, "50 alerts")
    docs = rec.delivered()
    assert len(docs) == 1, [len(x["alerts"]) for x in docs]
    assert len(docs[0]["alerts"]) == 50
    assert sorted(a["cell"] for a in docs[0]["alerts"]) == [f"c{i:02d}" for i in range(50)]
    assert len(docs[0]["text"].splitlines()) == 50
    assert d.stop() == 0


def test_failing_and_hanging_bridges_retry_without_blocking_ingest(make_daemon, broker, tmp_path):
    flaky = Recorder(str(tmp_path / "flaky"))
    hang = Recorder(str(tmp_path / "hang"))
    sinks = (record_sink("flaky", flaky.dir, "fail", "2")
             + record_sink("hang", hang.dir, "hang", extra="      timeout: 1s\n"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="1d"),
                    extra=alerts_cfg(sinks)).start()
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"f"}')
    wait_for(lambda: flaky.alerts("event"), 20, "delivered on the third try")
    tries = flaky.tries()
    assert len(tries) == 3 and len({doc["delivery_id"] for _, doc, _ in tries}) == 1
    # The hanging bridge is killed at its timeout and tried again...
    wait_for(lambda: len(hang.tries()) >= 2, 20, "hanging bridge retried")
    d.wait_log("timed out")
    # ...and ingest never waited for it.
    t0 = time.time()
    for i in range(20):
        publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"c%d"}' % i)
    wait_for(lambda: d.count("event", "type='checkin'") == 20, 10, "check-ins during hang")
    print(f"\n20 check-ins stored in {time.time() - t0:.2f} s while a bridge hangs")
    assert d.stop() == 0


def test_pause_row_from_another_connection(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    cells = "cells:\n" + fast_cell("yh-01", interval="3s", grace="0s", repeat="1h") \
        + fast_cell("yh-02", interval="3s", grace="0s", repeat="1h")
    d = make_daemon(cells=cells, extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
    sqlite_cli(d, "INSERT INTO pause (cell, since, until, reason) "
               "VALUES ('yh-01', strftime('%s','now'), NULL, '道路塌方')")
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue of the unpaused cell")
    # Both cells were due together; the paused one stays silent.
    publish(broker, "patrol/yh-02/w017/fishing", b'{"id":"sync"}')
    wait_for(lambda: rec.alerts("event"), 10, "sync event")
    assert [a["cell"] for a in rec.alerts("overdue")] == ["yh-02"]
    sqlite_cli(d, "DELETE FROM pause WHERE cell='yh-01'")
    wait_for(lambda: any(a["cell"] == "yh-01" for a in rec.alerts("overdue")), 15,
             "overdue after resume")
    assert d.stop() == 0


def test_mqtt_sink_publishes_each_alert(make_daemon, broker, tmp_path):
    out = tmp_path / "sub.txt"
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-v",
                            "-t", "gridpatrol/alerts/#"], stdout=open(out, "w"))
    try:
        sinks = "    - name: mqtt\n      topic: \"gridpatrol/alerts/{cell}/{kind}\"\n"
        d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="1d"),
                        extra=alerts_cfg(sinks)).start()
        # mosquitto_sub subscribes asynchronously: probe until it hears us.
        def subscribed():
            publish(broker, "gridpatrol/alerts/probe/x", b"probe", qos=0)
            return "probe" in out.read_text()
        wait_for(subscribed, 10, "mosquitto_sub subscription", interval=0.2)
        publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"m1"}')
        wait_for(lambda: "gridpatrol/alerts/yh-01/event" in out.read_text(), 15, "mqtt alert")
        line = [l for l in out.read_text().splitlines() if "/event " in l][0]
        doc = json.loads(line.split(" ", 1)[1])
        assert doc["sink"] == "mqtt" and doc["alerts"][0]["kind"] == "event"
        wait_for(lambda: d.query("SELECT state FROM delivery")[0][0] == "delivered", 10,
                 "mqtt delivery acknowledged")
        assert d.stop() == 0
    finally:
        sub.terminate()


def test_english_texts(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="2s", grace="0s", repeat="1h",
                                                 workers="[w017]"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir), extra="  language: en\n"))
    d.start()
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    text = rec.alerts("overdue")[0]["text"]
    assert text.startswith("[Patrol overdue] 测试网格 yh-01: no patrol on record for"), text
    assert "w017: please patrol now." in text
    publish(broker, "patrol/yh-01/w017/checkin", b'{"id":"c"}')
    wait_for(lambda: rec.alerts("recovered"), 10, "recovered alert")
    assert rec.alerts("recovered")[0]["text"].startswith("[Patrol resumed] 测试网格 yh-01: patrolled by w017")
    assert d.stop() == 0


def test_restart_remembers_a_pause_that_has_ended(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="4s", grace="0s", repeat="1h"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir)))
    d.start()
    assert d.stop() == 0
    # Known for an hour, paused until a moment ago: the count restarts at
    # the pause's end, not at known_since (which would be overdue at once).
    ended = int(time.time())
    sqlite_cli(d,
               f"UPDATE cell SET known_since = {ended - 3600};"
               f"INSERT INTO pause (cell, since, until, reason) VALUES "
               f"('yh-01', {ended - 600}, {ended}, '道路塌方')")
    d.start()
    publish(broker, "patrol/yh-01/w017/fishing", b'{"id":"live"}')
    wait_for(lambda: rec.alerts("event"), 10, "event after restart")
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue after the pause's end")
    due = rec.alerts("overdue")[0]["due"]
    assert datetime.datetime.fromisoformat(due).timestamp() == ended + 4, due
    assert d.stop() == 0


READINGS_EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  flood: { label: "防汛水位", patrol: false, value: { unit: cm } }
"""


def test_overdue_text_names_the_last_patrol_behind_readings_and_retention(
        make_daemon, broker, tmp_path):
    """The overdue text reads the last patrol as the engine and `status` do
    (event_span, patrol types of the configuration): not hidden by a run of
    readings that are no patrols, nor lost when retention deleted the row."""
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells="cells:\n" + fast_cell("yh-01", interval="3s", grace="0s", repeat="2s"),
                    extra=alerts_cfg(record_sink("wechat", rec.dir)), events=READINGS_EVENTS)
    d.start()
    publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"c1"}')
    lines = "".join(json.dumps({"id": f"f{i}", "value": 100 + i}) + "\n" for i in range(70))
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t",
                    "patrol/yh-01/w017/flood", "-l"], input=lines.encode(), check=True, timeout=20)
    wait_for(lambda: d.count() == 71, 10, "the check-in and 70 readings stored")
    wait_for(lambda: rec.alerts("overdue"), 15, "overdue alert")
    first = rec.alerts("overdue")[0]
    assert first["last_patrol"] and first["last_patrol"]["worker"] == "w021", first
    assert "上次 w021" in first["text"], first["text"]
    assert d.stop() == 0

    # Retention deleted the rows; event_span still knows the patrol.
    sqlite_cli(d, "DELETE FROM event")
    n = len(rec.alerts("overdue"))
    d.start()
    wait_for(lambda: len(rec.alerts("overdue")) > n, 15, "a repeat after the restart")
    again = rec.alerts("overdue")[-1]
    assert again["repeat"] > 0 and again["last_patrol"]["worker"] == "w021", again
    assert "上次 w021" in again["text"], again["text"]
    r = subprocess.run([os.environ.get("GRIDPATROL", "gridpatrol"), "-c", d.conf, "status",
                        "--format", "json"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cell = json.loads(r.stdout)["cells"][0]
    assert cell["last_patrol"]["worker"] == "w021"
    assert cell["last_patrol"]["ts"] == first["last_patrol"]["ts"]
    assert d.stop() == 0


NO_THRESHOLDS_EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  flood: { label: "防汛水位", value: { unit: cm } }
"""


def test_reading_level_survives_a_restart_without_its_thresholds(make_daemon, broker, tmp_path):
    """Start-up restores levels for the configured threshold types only; a
    reload that brings thresholds back reads the stored level again, so a
    reading still at warn raises nothing new."""
    import signal
    rec = Recorder(str(tmp_path / "sink"))
    cells = "cells:\n" + fast_cell("yh-01", interval="1d")
    extra = alerts_cfg(record_sink("wechat", rec.dir))
    d = make_daemon(cells=cells, extra=extra).start()
    publish(broker, "patrol/yh-01/w017/flood", b'{"id":"r1","value":260}')
    wait_for(lambda: rec.alerts("reading"), 10, "warn alert")
    assert d.stop() == 0

    d.write_config(cells, extra, events=NO_THRESHOLDS_EVENTS)
    d.start()
    d.write_config(cells, extra)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("configuration reloaded")
    publish(broker, "patrol/yh-01/w017/flood", b'{"id":"r2","value":270}')  # still warn
    publish(broker, "patrol/yh-01/w017/flood", b'{"id":"r3","value":200}')  # normal again
    wait_for(lambda: rec.alerts("recovered"), 10, "return to normal")
    assert [(a["kind"], a["value"]) for a in rec.alerts() if a["kind"] in ("reading", "recovered")] \
        == [("reading", 260.0), ("recovered", 200.0)]
    assert d.stop() == 0
