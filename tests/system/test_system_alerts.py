"""`system` alerts: the daemon tells the village when it cannot do its job —
the database cannot be written (delivered from memory, written to `alert`
afterwards, never twice), the broker is unreachable past
alerts.system_after, the broker drops messages over its queue limit — and
says "back to normal" when the condition ends."""
import errno
import json
import os
import signal
import subprocess
import time

from harness import Broker, Daemon, Recorder, record_sink, sim, wait_for
from test_storage import CELLS, small_filesystem


def alerts_cfg(sinks, extra=""):
    return ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
            f"{extra}  sinks:\n{sinks}")


def system_alerts(rec, condition, recovered):
    return [a for a in rec.alerts("system")
            if a.get("condition") == condition and a.get("recovered") == recovered]


def deliver_idle(rec):
    """Every try the sink started has finished (delivered)."""
    return all(os.path.exists(os.path.join(rec.dir, doc["delivery_id"] + ".delivered"))
               for _, doc, _ in rec.tries())


def fill(path):
    """Write zeros to path until the filesystem is full. A filesystem that is
    already full may refuse even to create the file (tmpfs: ENOSPC at open):
    then it is full, which is all this wants."""
    try:
        f = open(path, "ab", buffering=0)  # unbuffered: nothing left to fail at close
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        return
    with f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise


def test_database_not_writable_alert_from_memory_then_recovery(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))  # not on the full filesystem
    with small_filesystem(tmp_path, "4m") as fs:
        d = make_daemon(cells=CELLS, db=str(fs / "patrol.db"),
                        extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
        st = os.statvfs(str(fs))
        filler = fs / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 300 * 1024))
        sim(broker, 3000, "--id-prefix", "disk")
        d.wait_log("DATABASE NOT WRITABLE", 60)
        # No odd small batch may get through any more.
        fill(fs / "filler2")
        t_full = time.monotonic()
        wait_for(lambda: system_alerts(rec, "storage", False), 30,
                 "a storage system alert at the sink")
        took = time.monotonic() - t_full
        print(f"\nstorage system alert at the sink {took:.1f} s after the disk filled up")
        a = system_alerts(rec, "storage", False)[0]
        assert a["alert_id"] is None  # from memory: no row yet
        assert "无法写入" in a["text"] and str(fs / "patrol.db") in a["text"]
        held_id = [doc["delivery_id"] for doc in rec.delivered()
                   if doc["alerts"][0].get("condition") == "storage"][0]
        assert held_id.startswith("wechat-m")
        assert d.count("alert", "kind='system'") == 0
        stuck = d.count()

        # Long enough for the retry backoff to reach its cap (1, 2, 4, then
        # 5 s; uncapped it went on to 8, 16, 30 s and resuming took as
        # long). Freed space wakes the retry within a second even so.
        wait_for(lambda: d.log_text().count("database still not writable") >= 5, 60,
                 "five failed retries")
        (fs / "filler2").unlink()
        filler.unlink()
        t_free = time.monotonic()
        wait_for(lambda: d.count() > stuck, 30, "ingest to resume after space returns")
        resumed = time.monotonic() - t_free
        print(f"ingest resumed {resumed:.1f} s after space returned")
        assert resumed < 4.0
        wait_for(lambda: d.count() >= 3000, 60, "all 3000 rows")
        wait_for(lambda: system_alerts(rec, "storage", True), 30,
                 "a storage recovery at the sink")
        r = system_alerts(rec, "storage", True)[0]
        assert "恢复正常" in r["text"]
        d.wait_log("held in memory written to the database", 10)
        assert d.stop() == 0

        rows = d.query("SELECT id, doc FROM alert WHERE kind='system' ORDER BY id")
        assert len(rows) == 2, rows
        assert '"held":true' in rows[0][1] and '"recovered":false' in rows[0][1]
        assert '"recovered":true' in rows[1][1]
        # The held alert's delivery row says it was delivered; nothing sent twice.
        states = d.query("SELECT d.state, d.tries FROM outbox o JOIN delivery d "
                         "ON d.id = o.delivery_id WHERE o.alert_id = ?", (rows[0][0],))
        assert states == [("delivered", 0)], states
        # The office sees the id the bridge saw.
        listing = subprocess.run([os.environ.get("GRIDPATROL", "gridpatrol"), "-c", d.conf,
                                  "alerts", "--format", "json"],
                                 capture_output=True, text=True, check=True)
        held = [a for a in json.loads(listing.stdout)["alerts"] if a["id"] == rows[0][0]]
        assert [x["delivery_id"] for x in held[0]["delivery"]] == [held_id], held
        storage_docs = [doc for doc in rec.delivered()
                        if doc["alerts"][0].get("condition") == "storage"]
        assert len(storage_docs) == 2, [x["delivery_id"] for x in storage_docs]
        tries = [n for n, _, _ in rec.tries() if n.startswith(held_id + ".")]
        assert tries == [held_id + ".try1"], tries
        assert d.count() == 3000


def test_broker_unreachable_alert_and_recovery(make_daemon, broker, tmp_path):
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(extra=alerts_cfg(record_sink("wechat", rec.dir),
                                     "  system_after: 2s\n")).start()
    t0 = time.monotonic()  # before: the daemon may see the socket close first
    broker.stop()
    wait_for(lambda: system_alerts(rec, "broker", False), 20, "a broker system alert")
    took = time.monotonic() - t0
    print(f"\nbroker system alert {took:.1f} s after the broker stopped (system_after 2s)")
    assert took >= 2.0
    a = system_alerts(rec, "broker", False)[0]
    assert "MQTT" in a["text"] and a["alert_id"] is not None
    broker.start()
    wait_for(lambda: system_alerts(rec, "broker", True), 90, "a broker recovery")
    assert "恢复正常" in system_alerts(rec, "broker", True)[0]["text"]
    assert len(system_alerts(rec, "broker", False)) == 1
    assert d.stop() == 0
    assert d.count("alert", "kind='system'") == 2


class QueueLimitBroker(Broker):
    """A broker with mosquitto's default queue limit (1000 messages) and
    $SYS published every second."""

    def __init__(self, tmp):
        super().__init__(tmp)
        with open(self.conf) as f:
            conf = f.read()
        conf = conf.replace("max_queued_messages 1000000\n", "").replace(
            "max_inflight_messages 100\n", "")
        with open(self.conf, "w") as f:
            f.write(conf + "sys_interval 1\n")


def test_broker_dropping_messages_raises_system_alert(tmp_path):
    b = QueueLimitBroker(str(tmp_path)).start()
    try:
        rec = Recorder(str(tmp_path / "sink"))
        d = Daemon(str(tmp_path), b, cells=CELLS,
                   extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
        try:
            d.wait_log("messages dropped since it started", 15)
            # The daemon takes nothing while stopped: the broker queues
            # 1000 for it and drops the rest.
            d.proc.send_signal(signal.SIGSTOP)
            try:
                sim(b, 3000, "--id-prefix", "burst")
            finally:
                d.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: system_alerts(rec, "dropped", False), 30,
                     "a dropped-messages system alert")
            a = system_alerts(rec, "dropped", False)[0]
            assert "max_queued_messages" in a["text"] and "max_queued_bytes" in a["text"]
            assert d.count("rejected", "reason='bad_topic'") == 0
            wait_for(lambda: d.count() >= 1000, 30, "the queued 1000 stored")
            # It rises again: logged, but no second alert (no storm).
            d.proc.send_signal(signal.SIGSTOP)
            try:
                sim(b, 3000, "--id-prefix", "again")
            finally:
                d.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: d.log_text().count("mqtt: the broker dropped") >= 2, 30,
                     "the second rise in the log")
            wait_for(lambda: deliver_idle(rec), 10, "the sink to settle")
            assert len(system_alerts(rec, "dropped", False)) == 1
            assert d.stop() == 0
        finally:
            if d.alive():
                d.kill()
    finally:
        b.stop()


def test_broker_lost_during_storage_outage_still_alerts(make_daemon, broker, tmp_path):
    """The storage pause drops the connection on purpose, so a broker that
    goes away meanwhile never disconnects us: the storage retries' failed
    connect attempts must start the broker's system_after on their own."""
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=CELLS, storage_extra="  max_size: 160KiB\n",
                    extra=alerts_cfg(record_sink("wechat", rec.dir),
                                     "  system_after: 2s\n")).start()
    sim(broker, 3000, "--id-prefix", "full")
    d.wait_log("DATABASE NOT WRITABLE", 60)
    t0 = time.monotonic()
    broker.stop()
    wait_for(lambda: system_alerts(rec, "broker", False), 30,
             "a broker system alert during the storage outage")
    took = time.monotonic() - t0
    print(f"\nbroker system alert {took:.1f} s after the broker stopped "
          f"(database not writable, system_after 2s)")
    assert took >= 2.0
    a = system_alerts(rec, "broker", False)[0]
    assert "MQTT" in a["text"] and a["alert_id"] is None  # from memory
    assert "database writable again" not in d.log_text()
    assert len(system_alerts(rec, "broker", False)) == 1
    assert d.stop() == 0


def broker_dropped(b):
    """The broker's retained $SYS dropped counter, read with mosquitto_sub."""
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-C", "1",
                        "-W", "5", "-t", "$SYS/broker/publish/messages/dropped"],
                       capture_output=True, text=True, timeout=10)
    return int(r.stdout.strip() or -1)


def test_drops_while_the_daemon_is_down_are_reported(tmp_path):
    """The commonest overflow: the broker queues for the daemon while it is
    not running (restart, upgrade) and drops the rest. The count last seen
    is kept in the database, so the first value after the start reports
    the rise instead of becoming the baseline."""
    b = QueueLimitBroker(str(tmp_path)).start()
    try:
        rec = Recorder(str(tmp_path / "sink"))
        d = Daemon(str(tmp_path), b, cells=CELLS,
                   extra=alerts_cfg(record_sink("wechat", rec.dir))).start()
        try:
            d.wait_log("messages dropped since it started", 15)
            wait_for(lambda: d.query("SELECT count(*) FROM daemon_state WHERE key = ?",
                                     (f"broker_dropped:127.0.0.1:{b.port}",))[0][0] == 1,
                     10, "the dropped count in the database")
            assert d.stop() == 0
            sim(b, 3000, "--id-prefix", "away")
            # Start once the broker's retained counter shows the drops, as
            # after any real time away (a start within its sys_interval
            # would see the old value first and the rise after it).
            wait_for(lambda: broker_dropped(b) >= 2000, 15, "the broker's counter to rise")
            d.start()
            wait_for(lambda: system_alerts(rec, "dropped", False), 30,
                     "a dropped-messages system alert after the restart")
            a = system_alerts(rec, "dropped", False)[0]
            assert "max_queued_messages" in a["text"]
            assert "while it was not running" in d.log_text()
            wait_for(lambda: d.count() >= 1000, 30, "the queued 1000 stored")
            wait_for(lambda: deliver_idle(rec), 10, "the sink to settle")
            assert d.stop() == 0
            # Seen and stored: the next start reports nothing again.
            d.start()
            d.wait_log("messages dropped since it started", 15)
            assert "while it was not running" not in d.log_text()
            assert d.stop() == 0
            assert len(system_alerts(rec, "dropped", False)) == 1
        finally:
            if d.alive():
                d.kill()
    finally:
        b.stop()
