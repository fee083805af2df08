#!/usr/bin/python3
"""startup_bench: how long gridpatrold takes to subscribe on a year of
history, and its peak RSS (SPEC, Storage: within 1 s, at most 16 MiB, on
7.3 million events and 1,000 cells).

The year database is report_bench.py's (365 days: 20,000 events a day and
100,000 on the last; 1,000 cells), built once at schema 2 (what a
deployed box holds before upgrading) and kept in --workdir, plus a year
of alerts (add_alerts: about 100,000 rows, each with its delivered
delivery and outbox row: overdue episodes with their repeats and
recoveries, reading warn/alarm/normal, immediate events, digests), which
start-up reads to restore open overdue alerts and reading levels. Each run
copies it, starts its own loopback mosquitto and the real daemon, and
measures from process start to the daemon's "subscribed to" log line
(the SUBSCRIBE goes out in the same loop pass), then VmHWM at that
moment:

  (m) the first start on the schema-2 copy: the one-time 2 -> 3
      migration that fills event_span from history, then subscribing;
  (s) starts on the migrated copy: what every later start costs;
  (o) with --old-build, the same on a schema-2 copy with that build's
      gridpatrold (for a before/after figure);
  (c) with --compare-build, later starts on the same migrated copy with
      that build's gridpatrold (before/after on schema 3).

Each figure is the median of --runs starts with min and max; a table to
stdout, JSON to --json.

usage: startup_bench.py --build BUILD [--old-build OLD] [--compare-build CMP]
                        [--workdir DIR] [--runs N] [--json FILE]
"""
import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report_bench  # noqa: E402  (the year database and its cells)

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
HISTORY_PER_DAY = 20_000


def add_alerts(path):
    """A year of alerts as the daemon raises them (ids follow `at`), each
    delivered once to one sink. Per cell and year: about 25 overdue
    episodes (a first alert, 0-4 repeats, then the patrol's recovery;
    one cell in ten still open at the end), flood warn/alarm/normal in one
    cell in five, a few immediate events; one digest a day. Returns the
    number of alert rows."""
    rng = random.Random(20261202)
    day0 = int(report_bench.DAY.timestamp())
    first = day0 - 364 * 86400
    rows = []  # (at, kind, cell, due, repeat, worker, level, doc)

    def doc(kind, cell, at, **kw):
        d = {"kind": kind, "cell": cell, "cell_name": f"云华社区 {cell}号网格",
             "at": at, "workers": ["w017", "w021"]}
        d.update(kw)
        return json.dumps(d, ensure_ascii=False)

    for i in range(report_bench.CELLS):
        cell = f"c{i:04d}"
        t = first + rng.randrange(86400 * 7)
        episodes = rng.randrange(18, 33)
        step = (day0 - first) // episodes
        for e in range(episodes):
            due = t + rng.randrange(step // 2)
            reps = rng.choice((0, 0, 1, 1, 2, 3, 4))
            for r in range(reps + 1):
                at = due + r * 4 * 3600
                rows.append((at, "overdue", cell, due, r, None, None,
                             doc("overdue", cell, at, due=due, repeat=r)))
            last_open = e == episodes - 1 and i % 10 == 0
            if not last_open:
                at = due + reps * 4 * 3600 + rng.randrange(60, 3 * 3600)
                rows.append((at, "recovered", cell, due, 0, "w021", None,
                             doc("recovered", cell, at, patrol={"worker": "w021"})))
            t += step
        if i % 5 == 0:
            for k in range(rng.randrange(10, 30)):
                at = first + rng.randrange(364 * 86400)
                lv = "alarm" if rng.random() < 0.3 else "warn"
                ev = {"event_type": "flood", "event_label": "防汛水位"}
                rows.append((at, "reading", cell, None, 0, "w030", lv,
                             doc("reading", cell, at, level=lv, value=280.0, **ev)))
                if rng.random() < 0.9:
                    rows.append((at + rng.randrange(600, 86400), "recovered", cell, None, 0,
                                 "w030", "normal", doc("recovered", cell, at, level="normal",
                                                       value=180.0, **ev)))
        for k in range(rng.randrange(0, 8)):
            at = first + rng.randrange(364 * 86400)
            rows.append((at, "event", cell, None, 0, "w040", None,
                         doc("event", cell, at, event_type="fishing", event_label="水库钓鱼")))
    for d in range(365):
        at = first + d * 86400 + 20 * 3600
        rows.append((at, "digest", None, None, 0, None, None, doc("digest", None, at)))
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    # report_bench's few alerts of the report day join the year, so that
    # ids follow `at` throughout.
    for cell, at in con.execute("SELECT cell, at FROM alert WHERE kind = 'overdue'"):
        rows.append((at, "overdue", cell, at, 0, None, None, doc("overdue", cell, at, due=at)))
    con.execute("DELETE FROM alert")
    rows.sort(key=lambda r: r[0])
    base = con.execute("SELECT coalesce(max(id), 0) FROM alert").fetchone()[0]
    dbase = con.execute("SELECT coalesce(max(id), 0) FROM delivery").fetchone()[0]
    con.executemany("INSERT INTO alert (id, kind, cell, at, due, repeat, worker, level, text, doc) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(base + 1 + k, r[1], r[2], r[0], r[3], r[4], r[5], r[6],
                      "【巡查提醒】云华社区网格已 4小时 未巡查，请尽快巡查。", r[7])
                     for k, r in enumerate(rows)])
    con.executemany("INSERT INTO delivery (id, sink, state, created_ms, next_ms, tries, done_ms) "
                    "VALUES (?, 'wechat', 'delivered', ?, ?, 1, ?)",
                    [(dbase + 1 + k, r[0] * 1000, r[0] * 1000, r[0] * 1000 + 800)
                     for k, r in enumerate(rows)])
    con.executemany("INSERT INTO outbox (alert_id, sink, delivery_id) VALUES (?, 'wechat', ?)",
                    [(base + 1 + k, dbase + 1 + k) for k in range(len(rows))])
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return len(rows)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, interval=0.002):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            sys.exit(f"startup_bench: timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def write_config(path, db, port):
    report_bench.write_config(path, db)
    with open(path, encoding="utf-8") as f:
        body = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"mqtt:\n  host: 127.0.0.1\n  port: {port}\n"
                f"  client_id: gridpatrold-startup-bench-{os.getpid()}\n" + body)


def one_start(gridpatrold, work, db, timeout):
    port = free_port()
    conf = os.path.join(work, "broker.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                f"user {pwd.getpwuid(os.geteuid()).pw_name}\npersistence false\n")
    cfg = os.path.join(work, "gridpatrol.yaml")
    write_config(cfg, db, port)
    log = os.path.join(work, "gridpatrold.log")
    broker = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    daemon = None
    try:
        def listening():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(listening, 10, "mosquitto")
        with open(log, "wb") as logf:
            t0 = time.monotonic()
            daemon = subprocess.Popen([gridpatrold, "-c", cfg, "-v"], stdout=logf, stderr=logf)

            def subscribed():
                if daemon.poll() is not None:
                    sys.exit(f"gridpatrold exited {daemon.returncode}:\n" + open(log).read())
                with open(log, "rb") as f:
                    return b"subscribed to" in f.read()
            wait_for(subscribed, timeout, "gridpatrold to subscribe")
            took = time.monotonic() - t0
            hwm = vm(daemon.pid, "VmHWM")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        text = open(log, encoding="utf-8", errors="replace").read()
        return {"s": took, "hwm_kib": hwm,
                "log": [line for line in text.splitlines()
                        if "schema" in line or "rebuilt" in line]}
    finally:
        for p in (daemon, broker):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def series(label, runs):
    t = [r["s"] for r in runs]
    m = [r["hwm_kib"] for r in runs]
    return {"case": label, "runs": len(runs),
            "median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
            "median_hwm_kib": statistics.median(m), "min_hwm_kib": min(m),
            "max_hwm_kib": max(m), "log": runs[-1]["log"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--old-build")
    ap.add_argument("--compare-build")
    ap.add_argument("--workdir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default="startup_bench.json")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="startup-bench-")
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, f"year-{HISTORY_PER_DAY}-s2.db")
    if not os.path.exists(base):
        t0 = time.monotonic()
        report_bench.build_db(base, 365, HISTORY_PER_DAY, schema=2)
        print(f"built {base} in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    year = base
    base = os.path.join(work, f"year-{HISTORY_PER_DAY}-alerts-s2.db")
    if not os.path.exists(base):
        shutil.copyfile(year, base + ".part")
        n = add_alerts(base + ".part")
        os.rename(base + ".part", base)
        print(f"added {n:,} alerts into {base}", file=sys.stderr)
    n_alerts = None
    run_dir = os.path.join(work, "run")
    os.makedirs(run_dir, exist_ok=True)
    db = os.path.join(run_dir, "patrol.db")

    def fresh_copy():
        for suffix in ("", "-wal", "-shm", ".lock"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        shutil.copyfile(base, db)

    results = []
    if a.old_build:
        old = []
        for _ in range(a.runs):
            fresh_copy()
            old.append(one_start(os.path.join(a.old_build, "gridpatrold"), run_dir, db, 300))
        results.append(series("(o) old build, schema 2", old))
    new = os.path.join(a.build, "gridpatrold")
    mig, steady = [], []
    for _ in range(a.runs):
        fresh_copy()
        mig.append(one_start(new, run_dir, db, 600))
    results.append(series("(m) first start: migration 2 -> 3", mig))
    for _ in range(a.runs):
        steady.append(one_start(new, run_dir, db, 60))
    results.append(series("(s) later starts, schema 3", steady))
    if a.compare_build:
        cmp_runs = [one_start(os.path.join(a.compare_build, "gridpatrold"), run_dir, db, 60)
                    for _ in range(a.runs)]
        results.append(series("(c) later starts, schema 3, compare build", cmp_runs))
    con = sqlite3.connect(db)
    n_alerts = con.execute("SELECT count(*) FROM alert").fetchone()[0]
    con.close()

    print(f"gridpatrold start -> subscribed, {report_bench.CELLS:,} cells, "
          f"{os.path.getsize(base) / 1e6:.0f} MB database ({HISTORY_PER_DAY:,}/day for 364 days "
          f"+ {report_bench.EVENTS:,}), {n_alerts:,} alerts, median of {a.runs} (min-max)")
    print(f"{'case':<40} {'median s':>9} {'min s':>7} {'max s':>7} {'VmHWM KiB':>10} "
          f"{'min':>7} {'max':>7}")
    for r in results:
        print(f"{r['case']:<40} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f} "
              f"{r['median_hwm_kib']:>10.0f} {r['min_hwm_kib']:>7} {r['max_hwm_kib']:>7}")
        for line in r["log"]:
            print("    " + line)
    with open(a.json, "w") as f:
        json.dump({"cells": report_bench.CELLS, "history_per_day": HISTORY_PER_DAY,
                   "alerts": n_alerts,
                   "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
