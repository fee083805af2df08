"""Ingest end to end: real broker, real daemon, real clients, real SQLite."""
import os
import subprocess
import time

from harness import GRIDPATROLD, Daemon, publish, sim, wait_for

CELLS = [f"c{i:03d}" for i in range(100)]


def test_10000_checkins_over_100_cells(make_daemon, broker):
    d = make_daemon(cells=CELLS).start()
    t0 = time.monotonic()
    out = sim(broker, 10000, "--cells-n", "100", "--workers-n", "37", "--id-prefix", "t1")
    wait_for(lambda: d.count() >= 10000, 120, "10,000 rows")
    elapsed = time.monotonic() - t0
    print(f"\ningest: 10000 messages stored in {elapsed:.2f} s "
          f"({10000 / elapsed:.0f} msg/s end to end); sim: {out.stderr.strip()}")
    assert d.stop() == 0
    assert d.count() == 10000
    assert d.count("rejected") == 0
    # Each row carries what its topic and payload said.
    rows = d.query("SELECT worker, msg_id, cell, type, ts, device_ts, recv_ms, flags FROM event")
    seen = set()
    for worker, msg_id, cell, typ, ts, device_ts, recv_ms, flags in rows:
        i = int(msg_id.split("-")[1])
        seen.add(i)
        assert cell == f"c{i % 100:03d}"
        assert worker == f"w{i % 37:03d}"
        assert typ == "checkin"
        assert ts == device_ts
        assert abs(recv_ms / 1000 - ts) < 120
        assert flags == ""
    assert seen == set(range(10000))
    per_cell = d.query("SELECT cell, count(*) FROM event GROUP BY cell")
    assert len(per_cell) == 100 and all(n == 100 for _, n in per_cell)


def test_persistent_session_delivers_what_was_missed(make_daemon, broker):
    d = make_daemon(cells=CELLS).start()
    assert d.stop() == 0  # the session (and its subscription) stays on the broker
    sim(broker, 1000, "--id-prefix", "offline")
    d.start()
    wait_for(lambda: d.count() >= 1000, 60, "1,000 queued messages")
    assert d.stop() == 0
    assert d.count() == 1000
    assert d.count("event", "msg_id LIKE 'offline-%'") == 1000


def test_duplicate_ids_are_stored_once(make_daemon, broker):
    d = make_daemon().start()
    payload = b'{"id":"dup-1","ts":%d}' % int(time.time())
    for _ in range(3):
        publish(broker, "patrol/yh-01/w017/checkin", payload)
    publish(broker, "patrol/yh-01/w017/checkin", b'{"id":"dup-2"}')
    wait_for(lambda: d.count() >= 2, 10, "two rows")
    # A third, distinct message proves the duplicates were processed too.
    publish(broker, "patrol/yh-01/w021/checkin", b'{"id":"dup-1"}')
    wait_for(lambda: d.count() >= 3, 10, "three rows")
    assert d.stop() == 0
    assert d.count() == 3
    assert d.count("rejected") == 0


def test_sigterm_exits_zero_and_keeps_everything(make_daemon, broker):
    d = make_daemon(cells=CELLS).start()
    sim(broker, 2000, "--id-prefix", "term")
    wait_for(lambda: d.count() >= 1, 30, "first row")
    assert d.stop() == 0
    assert "stopped:" in d.log_text()
    n = d.count()
    d.start()
    wait_for(lambda: d.count() >= 2000, 60, "all 2,000 rows after restart")
    assert d.stop() == 0
    assert d.count() == 2000 and n <= 2000


def test_second_daemon_on_same_database_refuses(make_daemon, broker, tmp_path):
    d = make_daemon().start()
    other_conf = os.path.join(str(tmp_path), "other.yaml")
    with open(d.conf) as f:
        text = f.read().replace(d.client_id, d.client_id + "-2")
    with open(other_conf, "w") as f:
        f.write(text)
    r = subprocess.run([GRIDPATROLD, "-c", other_conf], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1
    assert "in use by another gridpatrold" in r.stderr
    assert d.alive()
    assert d.stop() == 0


def test_logs_carry_syslog_priorities(make_daemon, broker):
    d = make_daemon().start()
    publish(broker, "patrol/nowhere/w017/checkin", b"{}")
    d.wait_log("unknown_cell")
    assert d.stop() == 0
    for line in d.log_text().splitlines():
        assert line[:3] in {"<2>", "<3>", "<4>", "<5>", "<6>", "<7>"}, line


def test_broker_restart_is_survived(make_daemon, broker):
    d = make_daemon(cells=CELLS).start()
    sim(broker, 500, "--id-prefix", "before")
    wait_for(lambda: d.count() >= 500, 30, "500 rows")
    broker.stop()
    d.wait_log("lost connection", 20)
    broker.start()
    d.wait_log("reconnected", 30)
    sim(broker, 500, "--id-prefix", "after")
    wait_for(lambda: d.count() >= 1000, 30, "1,000 rows")
    assert d.stop() == 0


def test_check_config_accepts_example():
    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, "..", "..", "config", "gridpatrol.example.yaml")
    r = subprocess.run([GRIDPATROLD, "--check-config", "-c", example], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_check_config_reports_errors_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt:\n  port: 99999\n  colour: blue\n")
    r = subprocess.run([GRIDPATROLD, "-n", "-c", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}:2:")
    assert lines[1].startswith(f"{bad}:3:")
