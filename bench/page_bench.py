#!/usr/bin/python3
"""page_bench: how fast the office web page answers on a year of history
while the daemon ingests at full rate, and what serving it costs ingest
(issue 14: page latency p50/p99 for the now page and a day's report; the
ingest ratio must not drop below 0.90).

The year database is report_bench.py's (1,000 cells, 20,000 events a day
for 364 days and 100,000 on the report day 2026-06-15; 7.38 M events),
built once into --workdir and copied for each run. Each run starts its own
loopback mosquitto (bench/run's Broker: contrib's settings that matter),
the real gridpatrold on the copy (storage.sync: full, the default) and
`gridpatrol serve` on a free loopback port, and measures side by side:

  (q) page latency, daemon idle: --fetches GETs of each page, one client
      after the other (the secretary's phone, then the office PC);
  (a) the bare subscriber's ingest ceiling (bench/sub_count), as part 1a
      of bench/run, in the same run;
  (b) the daemon's ingest on the year database, nobody reading the page;
  (p) the same while one client fetches the now page and the report page
      in turn, one request every --interval s (default 0.5 s: two a second,
      a hundred times what one phone's now page refreshing every 60 s
      asks), with the latency of every fetch made during the load;
      --interval 0 fetches without pause (a worst case no office makes).

Ingest rate: --count check-ins published by gridpatrol-sim at QoS 1 over
the 1,000 cells; from the daemon receiving the first of them (recv_ms of
the first new row) to the last new row being visible to a reader (polled
at 50 Hz, as bench/commit_probe does). Ratios b/a and p/a.

Every figure is the median of --runs runs with min and max; a table goes to
stdout, JSON to --json.

usage: page_bench.py --build BUILD [--workdir DIR] [--runs N] [--count N]
                     [--fetches N] [--interval S] [--json FILE]
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report_bench  # noqa: E402  (the year database and its configuration)

# bench/run has no .py suffix; its broker, process and subscriber helpers
# are reused rather than copied.
_loader = importlib.machinery.SourceFileLoader("bench_run", os.path.join(HERE, "run"))
_spec = importlib.util.spec_from_loader("bench_run", _loader)
br = importlib.util.module_from_spec(_spec)
_loader.exec_module(br)

DAY = report_bench.DAY.strftime("%Y-%m-%d")
PAGES = (("now", "/"), ("report", f"/report?date={DAY}"))


def pct(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def lat_stats(ms):
    return {"n": len(ms), "p50_ms": pct(ms, 0.50), "p99_ms": pct(ms, 0.99),
            "max_ms": max(ms) if ms else None}


class YearSite:
    """A copy of the year database with gridpatrold and gridpatrol serve on it."""

    def __init__(self, build, broker, base, tmp):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="site-", dir=tmp)
        self.db = os.path.join(self.dir, "patrol.db")
        shutil.copyfile(base, self.db)
        self.conf = os.path.join(self.dir, "gridpatrol.yaml")
        report_bench.write_config(self.conf, self.db)
        with open(self.conf, "a", encoding="utf-8") as f:
            f.write(f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n"
                    f"  client_id: gridpatrold-page-bench-{os.getpid()}\n")
        self.log = os.path.join(self.dir, "gridpatrold.log")
        self.web_log = os.path.join(self.dir, "serve.log")
        self.port = br.free_port()
        self.daemon = self.web = None

    def _text(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def __enter__(self):
        self.logf = open(self.log, "ab")
        self.daemon = br.spawn([os.path.join(self.build, "gridpatrold"), "-c", self.conf, "-v"],
                               stdout=self.logf, stderr=self.logf)

        def up():
            if self.daemon.poll() is not None:
                raise br.BenchError("gridpatrold exited:\n" + self._text(self.log))
            return "subscribed to" in self._text(self.log)
        br.wait_for(up, 60, "gridpatrold to subscribe")
        self.webf = open(self.web_log, "ab")
        self.web = br.spawn([os.path.join(self.build, "gridpatrol"), "-c", self.conf, "serve",
                             "--listen", f"127.0.0.1:{self.port}"],
                            stdout=self.webf, stderr=self.webf)
        br.wait_for(lambda: br.port_open(self.port) or self.web.poll() is not None, 20,
                    "gridpatrol serve to listen")
        if self.web.poll() is not None:
            raise br.BenchError("gridpatrol serve exited:\n" + self._text(self.web_log))
        time.sleep(0.5)  # the SUBSCRIBE and retained status settle
        return self

    def __exit__(self, *exc):
        br.stop(self.web)
        br.stop(self.daemon, signal.SIGTERM, 30)
        self.logf.close()
        self.webf.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fetch(self, path):
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            body = r.read()
            if r.status != 200 or not body:
                raise br.BenchError(f"GET {path}: {r.status}, {len(body)} bytes")
        return (time.monotonic() - t0) * 1000.0, len(body)

    def max_id(self):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("SELECT max(id) FROM event").fetchone()[0] or 0
        finally:
            con.close()

    def ingest(self, count, reader=None, interval=0.5):
        """Publish `count` check-ins; msgs/s from the first new row's recv_ms
        to the last new row visible. `reader` runs in a thread meanwhile."""
        base = self.max_id()
        stop_reading = threading.Event()
        lat = {name: [] for name, _ in PAGES}
        errors = []

        def read_loop():
            try:
                while not stop_reading.is_set():
                    for name, path in PAGES:
                        lat[name].append(self.fetch(path)[0])
                        if interval and stop_reading.wait(interval):
                            return
            except Exception as e:  # noqa: BLE001 (reported, not hidden)
                errors.append(repr(e))
        t = threading.Thread(target=read_loop, daemon=True) if reader else None
        if t:
            t.start()
        sim = br.spawn([os.path.join(self.build, "gridpatrol-sim"), "-p",
                        str(self.broker_port), "--count", str(count), "--cells-n",
                        str(report_bench.CELLS), "--cell-width", "4", "--inflight", "1000",
                        "--id-prefix", f"pb{time.time_ns()}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        deadline = time.monotonic() + 300
        try:
            while True:
                n = con.execute("SELECT max(id) FROM event").fetchone()[0] - base
                if n >= count:
                    done_ms = time.time() * 1000.0
                    break
                if time.monotonic() > deadline:
                    raise br.BenchError(f"only {n} of {count} rows after 300 s")
                time.sleep(0.02)
            first = con.execute("SELECT min(recv_ms) FROM event WHERE id > ?",
                                (base,)).fetchone()[0]
        finally:
            con.close()
            stop_reading.set()
            if t:
                t.join(60)
            sim.wait(60)
            if sim in br.PROCS:
                br.PROCS.remove(sim)
        if errors:
            raise br.BenchError("page fetch failed during ingest: " + errors[0])
        elapsed = (done_ms - first) / 1000.0
        return {"count": count, "elapsed_s": elapsed, "msgs_per_s": count / elapsed,
                "latency": {name: lat_stats(v) for name, v in lat.items()} if reader else None}


def series(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--fetches", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--json", default="page_bench.json")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="page-bench-")
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, "year.db")
    if not os.path.exists(base):
        t0 = time.monotonic()
        report_bench.build_db(base, 365, 20_000)
        print(f"built {base} in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    # bench/run's helpers read these module globals.
    br.DEADLINE = time.monotonic() + 3600
    ns = argparse.Namespace(build=a.build, count=a.count, max_inflight=100)
    tmp = tempfile.mkdtemp(prefix="page-bench-run-")
    runs = []
    try:
        for i in range(a.runs):
            print(f"run {i + 1}/{a.runs} ...", file=sys.stderr)
            sub = br.measure_sub_ingest(ns, tmp)
            with br.Broker(tmp) as broker, YearSite(a.build, broker, base, tmp) as site:
                site.broker_port = broker.port
                quiet = {name: [] for name, _ in PAGES}
                sizes = {}
                for _ in range(a.fetches):
                    for name, path in PAGES:
                        ms, size = site.fetch(path)
                        quiet[name].append(ms)
                        sizes[name] = size
                plain = site.ingest(a.count)
                loaded = site.ingest(a.count, reader=True, interval=a.interval)
            runs.append({"sub_msgs_per_s": sub["msgs_per_s"], "daemon": plain,
                         "daemon_with_pages": loaded, "sizes": sizes,
                         "quiet": {name: lat_stats(v) for name, v in quiet.items()},
                         "loadavg": br.loadavg()})
    finally:
        br.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    out = {"interval_s": a.interval, "database": {"cells": report_bench.CELLS, "bytes": os.path.getsize(base),
                        "report_day": DAY}, "runs": runs, "summary": {}}
    s = out["summary"]
    s["sub_msgs_per_s"] = series([r["sub_msgs_per_s"] for r in runs])
    s["daemon_msgs_per_s"] = series([r["daemon"]["msgs_per_s"] for r in runs])
    s["daemon_with_pages_msgs_per_s"] = series([r["daemon_with_pages"]["msgs_per_s"]
                                                for r in runs])
    s["ratio_b_a"] = series([r["daemon"]["msgs_per_s"] / r["sub_msgs_per_s"] for r in runs])
    s["ratio_p_a"] = series([r["daemon_with_pages"]["msgs_per_s"] / r["sub_msgs_per_s"]
                             for r in runs])
    for name, _ in PAGES:
        for phase, key in (("quiet", "quiet"), ("ingest", "daemon_with_pages")):
            for q in ("p50_ms", "p99_ms"):
                vals = [(r[key]["latency"] if key != "quiet" else r["quiet"])[name][q]
                        for r in runs]
                s[f"{name}_{phase}_{q}"] = series(vals)
        s[f"{name}_fetches_during_ingest"] = series(
            [r["daemon_with_pages"]["latency"][name]["n"] for r in runs])
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)

    print(f"office page on a year of history ({report_bench.CELLS:,} cells, "
          f"{os.path.getsize(base) / 1e6:.0f} MB), median of {a.runs} (min-max)")
    for k, v in s.items():
        if v is None:
            continue
        print(f"  {k:<36} {v['median']:>10.2f}  ({v['min']:.2f}-{v['max']:.2f})")


if __name__ == "__main__":
    main()
