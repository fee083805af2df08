#!/usr/bin/python3
"""startup_bench: how long gridpatrold takes to subscribe on a year of
history, and its peak RSS (SPEC, Storage: within 1 s, at most 16 MiB, on
7.3 million events and 1,000 cells).

The year database is report_bench.py's (365 days: 20,000 events a day and
100,000 on the last; 1,000 cells), built once at schema 2 (what a
deployed box holds before upgrading) and kept in --workdir. Each run
copies it, starts its own loopback mosquitto and the real daemon, and
measures from process start to the daemon's "subscribed to" log line
(the SUBSCRIBE goes out in the same loop pass), then VmHWM at that
moment:

  (m) the first start on the schema-2 copy: the one-time 2 -> 3
      migration that fills event_span from history, then subscribing;
  (s) starts on the migrated copy: what every later start costs;
  (o) with --old-build, the same on a schema-2 copy with that build's
      gridpatrold (for a before/after figure).

Each figure is the median of --runs starts with min and max; a table to
stdout, JSON to --json.

usage: startup_bench.py --build BUILD [--old-build OLD] [--workdir DIR]
                        [--runs N] [--json FILE]
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import socket
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

    print(f"gridpatrold start -> subscribed, {report_bench.CELLS:,} cells, "
          f"{os.path.getsize(base) / 1e6:.0f} MB database ({HISTORY_PER_DAY:,}/day for 364 days "
          f"+ {report_bench.EVENTS:,}), median of {a.runs} (min-max)")
    print(f"{'case':<40} {'median s':>9} {'min s':>7} {'max s':>7} {'VmHWM KiB':>10} "
          f"{'min':>7} {'max':>7}")
    for r in results:
        print(f"{r['case']:<40} {r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f} "
              f"{r['median_hwm_kib']:>10.0f} {r['min_hwm_kib']:>7} {r['max_hwm_kib']:>7}")
        for line in r["log"]:
            print("    " + line)
    with open(a.json, "w") as f:
        json.dump({"cells": report_bench.CELLS, "history_per_day": HISTORY_PER_DAY,
                   "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
