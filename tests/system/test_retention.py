"""Retention: old history goes at start in small steps while ingest keeps
running, alerts a sink may still get stay, and `rejected` keeps its cap
under a flood. Back-dated rows are written straight into the database file
(SQL, as a year of history would look) before the daemon starts."""
import json
import os
import re
import sqlite3
import threading
import time

from harness import sim, sim_start, wait_for

# retention must be at least max_backfill (config), so a 1 d retention
# goes with a 1 d backfill.
BACKFILL_1D = "limits:\n  max_backfill: 1d\n"

DAY = 86400
# tests/system/meson.build passes b_sanitize; ASAN_OPTIONS for a sanitized
# build run by hand. The daemon is slower there (SQLite is not instrumented).
SANITIZED = (os.environ.get("GRIDPATROL_SANITIZE", "none") not in ("", "none")
             or "ASAN_OPTIONS" in os.environ)
CELLS = [f"c{i:03d}" for i in range(100)]


def create_schema(make_daemon):
    """Start and stop the daemon once, so the file has its schema (and the
    daemon's auto_vacuum) before rows are written into it."""
    d = make_daemon(cells=CELLS, storage_extra="  retention: 0s\n").start()
    assert d.stop() == 0
    return d


def backdate_events(db, n, first_ts, prefix="old", per_s=100):
    """n check-ins, per_s per second of patrol time from first_ts on, in one
    INSERT ... SELECT: a million take a few seconds."""
    con = sqlite3.connect(db)
    con.execute(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1) "
        "INSERT INTO event (worker, msg_id, cell, type, ts, recv_ms, flags, raw) "
        "SELECT printf('w%03d', i % 50), ?3 || '-' || i, printf('c%03d', i % 100), 'checkin', "
        "?2 + i / ?4, (?2 + i / ?4) * 1000, '', "
        "'{\"id\":\"' || ?3 || '-' || i || '\",\"ts\":' || (?2 + i / ?4) || '}' FROM c",
        (n, first_ts, prefix, per_s))
    con.commit()
    con.close()


def test_backdated_rows_pruned_at_start(make_daemon, broker):
    d = create_schema(make_daemon)
    now = int(time.time())
    old, recent = now - 3 * DAY, now - 3600
    backdate_events(d.db, 500, old, "old")
    backdate_events(d.db, 50, recent, "new")
    con = sqlite3.connect(d.db)
    for i in range(200):
        at = old if i < 150 else recent
        con.execute("INSERT INTO rejected (recv_ms, topic, payload, payload_len, reason, detail) "
                    "VALUES (?, 't', 'x', 1, 'bad_json', 'd')", (at * 1000 + i,))

    def alert(aid, kind, at, cell="c001", repeat=0, delivery=None):
        con.execute("INSERT INTO alert (id, kind, cell, at, repeat, text, doc) "
                    "VALUES (?, ?, ?, ?, ?, 't', '{}')", (aid, kind, cell, at, repeat))
        if delivery:
            did, state = delivery
            con.execute("INSERT OR IGNORE INTO delivery (id, sink, state, created_ms, next_ms) "
                        "VALUES (?, 'offline', ?, ?, ?)", (did, state, at * 1000, at * 1000))
            con.execute("INSERT INTO outbox VALUES (?, 'offline', ?)", (aid, did))

    alert(1, "event", old, delivery=(1, "delivered"))
    alert(2, "event", old + 1, delivery=(1, "delivered"))   # grouped with 1
    alert(3, "digest", old + 2, cell=None, delivery=(2, "expired"))
    alert(4, "event", old + 3, delivery=(3, "pending"))     # a sink may still get it
    alert(5, "overdue", old + 4, cell="c002", delivery=(4, "delivered"))
    alert(6, "overdue", old + 5, cell="c002", repeat=1, delivery=(5, "delivered"))
    alert(7, "event", recent, delivery=(6, "delivered"))
    con.commit()
    con.close()

    d.write_config(CELLS, storage_extra="  retention: 1d\n", extra=BACKFILL_1D)
    t0 = time.monotonic()
    d.start()
    wait_for(lambda: d.count("event", "ts < ?", (now - DAY,)) == 0, 10, "old events pruned")
    wait_for(lambda: d.count("alert", "id IN (1, 2, 3)") == 0, 10, "old alerts pruned")
    took = time.monotonic() - t0
    print(f"pruned {took:.2f} s after start")
    # What README says: within a second of start (the process's, not of
    # "subscribed"; measured 0.05 s, with or without ASan).
    assert took < 1.0
    assert d.count("event") == 50
    assert d.count("rejected") == 50
    assert d.count("rejected", "recv_ms < ?", ((now - DAY) * 1000,)) == 0
    # Kept: the pending one with its delivery, the cell's newest overdue
    # alert (6, what the daemon reads back at start) and the first of its
    # run (5, for "late" in the recovery), the recent one.
    assert [r[0] for r in d.query("SELECT id FROM alert ORDER BY id")] == [4, 5, 6, 7]
    assert [r[0] for r in d.query("SELECT id FROM delivery ORDER BY id")] == [3, 4, 5, 6]
    assert d.query("SELECT state FROM delivery WHERE id = 3")[0][0] == "pending"
    assert d.count("outbox") == 4
    d.wait_log("retention: removed 500 events, 150 rejected, 3 alerts and 2 deliveries")
    assert d.stop() == 0
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"
    assert d.query("PRAGMA foreign_key_check") == []


def test_full_database_makes_room_by_retention(make_daemon, broker):
    """storage.max_size reached between two retention runs: the rows that
    aged past retention meanwhile are deleted before a retry, so ingest
    resumes by itself (before, retention waited for ingest to come back, and
    ingest stopped until the next hourly run)."""
    d = create_schema(make_daemon)
    n_old, n_live, age_in = 6000, 3000, 6
    # All of them pass retention (1d) age_in seconds from now: after the
    # start-up run, which must find nothing to do.
    backdate_events(d.db, n_old, int(time.time()) - DAY + age_in, per_s=n_old)
    cap = os.path.getsize(d.db) + 128 * 1024
    d.write_config(CELLS, storage_extra=f"  retention: 1d\n  max_size: {cap}\n",
                   extra=BACKFILL_1D)
    d.start()
    sim(broker, n_live, "--id-prefix", "live")
    d.wait_log("DATABASE NOT WRITABLE", 60)
    live = lambda: d.count("event", "msg_id LIKE 'live-%'")
    assert live() < n_live
    wait_for(lambda: live() == n_live, 60, f"all {n_live} live rows with no operator action")
    d.wait_log(f"retention: removed {n_old} events", 10)
    assert d.count("event") == n_live
    assert os.path.getsize(d.db) <= cap
    assert d.stop() == 0
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"


class Probe(threading.Thread):
    """Watches the file from outside, like bench/commit_probe: every few ms
    the rows committed since the last look, and for each the time from
    gridpatrol-sim's publish (sent_ms in the payload) to being seen."""

    def __init__(self, db, prefix):
        super().__init__(daemon=True)
        self.db, self.prefix = db, prefix
        self.stop = threading.Event()
        self.latencies = []
        self.errors = []
        self.last_id = 0
        self.last_seen = 0
        self.max_gap = 0  # ms between two looks that found new rows

    def run(self):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        self.last_id = con.execute("SELECT coalesce(max(id), 0) FROM event").fetchone()[0]
        while not self.stop.is_set():
            try:
                rows = con.execute("SELECT id, raw FROM event WHERE id > ? ORDER BY id",
                                   (self.last_id,)).fetchall()
            except sqlite3.OperationalError as e:  # busy while the WAL restarts
                self.errors.append(str(e))
                time.sleep(0.005)
                continue
            seen = time.time() * 1000
            for rid, raw in rows:
                self.last_id = rid
                doc = json.loads(raw)
                if str(doc.get("id", "")).startswith(self.prefix):
                    self.latencies.append(seen - doc["sent_ms"])
            if rows:
                if self.last_seen:
                    self.max_gap = max(self.max_gap, seen - self.last_seen)
                self.last_seen = seen
            time.sleep(0.005)
        con.close()


def test_large_backlog_does_not_stall_ingest(make_daemon, broker):
    d = create_schema(make_daemon)
    now = int(time.time())
    n_old = 1_000_000
    t0 = time.monotonic()
    backdate_events(d.db, n_old, now - 30 * DAY)
    print(f"generated {n_old} old rows in {time.monotonic() - t0:.1f} s")

    d.write_config(CELLS, storage_extra="  retention: 1d\n", extra=BACKFILL_1D)
    probe = Probe(d.db, "live")
    probe.start()
    d.start()
    rate, count = 200, 200 * 60
    stream = sim_start(broker, count, "--rate", str(rate), "--cells-n", "100",
                       "--id-prefix", "live")
    try:
        d.wait_log("retention: removed", 60)
        assert d.count("event", "ts < ?", (now - DAY,)) == 0
        # Keep the stream going a little past the backlog's end.
        n_then = len(probe.latencies)
        wait_for(lambda: len(probe.latencies) > n_then + 2 * rate, 20, "ingest after pruning")
    finally:
        stream.terminate()
        stream.wait(10)
        probe.stop.set()
        probe.join(10)
    m = re.search(r"retention: removed (\d+) events.* in (\d+) ms \((\d+) steps, "
                  r"longest (\d+) ms, (\d+) over 50 ms\)", d.log_text())
    assert m, d.log_text()[-2000:]
    removed, took, steps, longest, slow = map(int, m.groups())
    lat = sorted(probe.latencies)
    p99 = lat[int(len(lat) * 0.99)]
    print(f"pruned {removed} rows in {took} ms, {steps} steps, longest step {longest} ms, "
          f"{slow} over 50 ms; "
          f"{len(lat)} live messages stored meanwhile, publish->seen p50 "
          f"{lat[len(lat) // 2]:.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms; "
          f"longest gap between commits seen {probe.max_gap:.0f} ms")
    assert removed == n_old
    assert probe.is_alive() is False and len(probe.errors) < 100, probe.errors[:5]
    assert len(lat) > rate  # ingest really ran alongside
    # The SPEC: the lock is held ~50 ms at most at a time. Typical steps are
    # the daemon's doing (budget tuned toward 25 ms) and asserted closely;
    # the odd long one is a commit that ran a checkpoint on a busy disk or a
    # descheduled process, which a loaded 2-core CI machine running two
    # tests at once (and again under ASan) has plenty of. Measured there:
    # 25-34 ms per step on average, up to 8% of steps over 50 ms, longest
    # step 48-511 ms, longest gap between commits 53-521 ms, publish->seen
    # p99 63-421 ms, max 70-538 ms. A single DELETE of the million rows holds
    # the lock 5.3 s; steps that followed each other without ingest batches
    # between would show as a gap of the whole run (4-12 s).
    k = 1.5 if SANITIZED else 1.0
    assert took / steps <= 50 * k        # includes the ingest between steps
    assert slow <= steps * 0.2 * k
    assert longest < 750 * k
    assert probe.max_gap < 750 * k
    assert p99 < 600 * k
    assert lat[-1] < 1000 * k
    assert d.stop() == 0
    # The new file (auto_vacuum=INCREMENTAL) gave the space back: the
    # million rows took about 150 MB.
    size = os.path.getsize(d.db)
    print(f"database file after pruning: {size} bytes")
    assert size < 16 * 1024 * 1024


def test_rejected_cap_holds_under_a_flood(make_daemon, broker):
    cap, n = 300, 3000
    d = make_daemon(cells=CELLS, storage_extra=f"  max_rejected: {cap}\n").start()
    # Cells the configuration does not have: each one is rejected.
    sim(broker, n, "--cell-prefix", "zz", "--id-prefix", "bad")
    wait_for(lambda: d.query("SELECT max(id) FROM rejected")[0][0] == n, 60,
             f"all {n} rejections stored")
    wait_for(lambda: d.count("rejected") <= cap, 10, "the cap to hold")
    assert d.count("rejected") == cap
    # The newest stay.
    assert d.query("SELECT min(id) FROM rejected")[0][0] == n - cap + 1
    assert d.stop() == 0
