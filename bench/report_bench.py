#!/usr/bin/python3
"""report_bench: wall time of `gridpatrol report` at village-county scale.

Builds SQLite databases with the daemon's real schema (the CREATE
statements are read out of src/daemon/store.c's migration list, so the benchmark
cannot drift from the schema) and times the real CLI binary:

  (a) one day: 1,000 cells, 100,000 events that day;
  (b) a year: the same report day inside a database holding 365 days of
      history (--history-per-day events on each earlier day, default
      20,000 to keep generation to a couple of minutes; the report day
      itself always has the full 100,000).

Each figure is the median of 3 runs with min and max. A table goes to
stdout and the figures as JSON to --json (default report_bench.json in
the current folder). Databases are kept in --workdir (default a fresh
temporary folder) and reused on the next run if present.

usage: report_bench.py --gridpatrol BUILD/gridpatrol [--workdir DIR]
                       [--history-per-day N] [--json FILE]
"""
import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
STORE_C = os.path.join(HERE, "..", "src", "daemon", "store.c")
TZ = timezone(timedelta(hours=8))  # Asia/Shanghai, no DST
DAY = datetime(2026, 6, 15, tzinfo=TZ)  # a past day: the report is complete
CELLS = 1000
EVENTS = 100_000
RUNS = 3


def schema_from_store_c():
    """The migration SQL strings of src/daemon/store.c, in order."""
    src = open(STORE_C, encoding="utf-8").read()
    body = src[src.index("store_migrations[] = {"):]
    body = body[body.index("{") + 1:body.index("\n};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    migrations, cur = [], []
    # Adjacent C literals concatenate; a comma between them ends a migration.
    for tok in re.finditer(r'"((?:[^"\\]|\\.)*)"|,', body):
        if tok.group(0) == ",":
            migrations.append("".join(cur))
            cur = []
        else:
            cur.append(bytes(tok.group(1), "utf-8").decode("unicode_escape"))
    if cur:
        migrations.append("".join(cur))
    return migrations


def write_config(path, db):
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"storage:\n  path: {db}\ntimezone: Asia/Shanghai\n"
                "defaults:\n  interval: 4h\n  grace: 15m\n  active: \"07:00-19:00\"\n"
                "cells:\n")
        for i in range(CELLS):
            extra = "    interval: 2h\n" if i % 3 == 0 else ""
            extra += "    active: always\n" if i % 10 == 0 else ""
            f.write(f"  - id: c{i:04d}\n    name: \"云华社区 {i}号网格\"\n{extra}")
        f.write("events:\n"
                "  checkin: { label: \"巡查签到\" }\n"
                "  litter: { label: \"白色垃圾\", patrol: false }\n"
                "  fishing: { label: \"水库钓鱼\", alert: immediate }\n"
                "  flood: { label: \"防汛水位\", value: { unit: cm, warn: 250, alarm: 300 } }\n")


def day_rows(rng, day_start, n, first_id):
    """n events spread over one local day, most in working hours."""
    types = ["checkin"] * 80 + ["litter"] * 12 + ["flood"] * 7 + ["fishing"]
    rows = []
    for k in range(n):
        cell = f"c{rng.randrange(CELLS):04d}"
        # 90 % between 07:00 and 19:00, the rest at any time.
        off = rng.randrange(7 * 3600, 19 * 3600) if rng.random() < 0.9 else rng.randrange(86400)
        ts = day_start + off
        typ = rng.choice(types)
        value = round(rng.uniform(150, 320), 1) if typ == "flood" else None
        flags = "late" if rng.random() < 0.05 else ""
        worker = f"w{rng.randrange(400):03d}"
        rows.append((worker, f"m{first_id + k}", cell, typ, ts, ts, ts * 1000 + 500, None, None,
                     value, None, None, flags, "{}"))
    rows.sort(key=lambda r: r[4])
    return rows


# History is inserted into the schema it predates; migrations from here on
# (2 -> 3 fills event_span from it) then run over it as on an upgrade.
HISTORY_SCHEMA = 2


def build_db(path, days, per_day_history, schema=None):
    """A database of `days` days ending on DAY, at schema version `schema`
    (default: the newest in src/daemon/store.c)."""
    tmp = path + ".part"
    if os.path.exists(tmp):
        os.unlink(tmp)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    migrations = schema_from_store_c()
    schema = len(migrations) if schema is None else schema
    for m in migrations[:HISTORY_SCHEMA]:
        con.executescript(m)
    rng = random.Random(20261124)
    day0 = int(DAY.timestamp())
    first = day0 - (days - 1) * 86400
    con.executemany("INSERT INTO cell (id, known_since) VALUES (?, ?)",
                    [(f"c{i:04d}", first - 86400) for i in range(CELLS)])
    next_id = 0
    for d in range(days):
        start = first + d * 86400
        n = EVENTS if start == day0 else per_day_history
        rows = day_rows(rng, start, n, next_id)
        next_id += n
        con.executemany("INSERT INTO event (worker, msg_id, cell, type, ts, device_ts, recv_ms, "
                        "lat, lon, value, note, photo, flags, raw) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
    # A few alerts on the report day, as the daemon would have raised.
    con.executemany("INSERT INTO alert (kind, cell, at, text, doc) VALUES (?,?,?,?,?)",
                    [("overdue", f"c{i:04d}", day0 + 36000 + i, "…", "{}")
                     for i in range(0, CELLS, 7)])
    con.commit()
    for m in migrations[HISTORY_SCHEMA:schema]:
        con.executescript(m)
    con.execute(f"PRAGMA user_version = {max(schema, HISTORY_SCHEMA)}")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    os.rename(tmp, path)


def time_report(gridpatrol, cfg, db, fmt):
    times = []
    for _ in range(RUNS):
        t0 = time.monotonic()
        r = subprocess.run([gridpatrol, "-c", cfg, "--db", db, "report", "--date",
                            DAY.strftime("%Y-%m-%d"), "--format", fmt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.monotonic() - t0)
        if r.returncode != 0:
            sys.exit(f"gridpatrol report failed: {r.stderr.decode()}")
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gridpatrol", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--history-per-day", type=int, default=20_000)
    ap.add_argument("--json", default="report_bench.json")
    a = ap.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="report-bench-")
    os.makedirs(work, exist_ok=True)
    cfg = os.path.join(work, "bench.yaml")
    one = os.path.join(work, f"one-day-s{len(schema_from_store_c())}.db")
    # Named by schema: a database built for an older one lacks event_span.
    year = os.path.join(work, f"year-{a.history_per_day}-s{len(schema_from_store_c())}.db")
    write_config(cfg, one)

    gen = {}
    for path, days in ((one, 1), (year, 365)):
        if not os.path.exists(path):
            t0 = time.monotonic()
            build_db(path, days, a.history_per_day)
            gen[os.path.basename(path)] = round(time.monotonic() - t0, 1)

    results = []
    for label, db, fmts in (("(a) 1 day, 1,000 cells, 100,000 events", one,
                             ("json", "text", "csv", "html")),
                            (f"(b) 365 days ({a.history_per_day:,}/day history), same day", year,
                             ("json", "html"))):
        size = os.path.getsize(db)
        for fmt in fmts:
            r = time_report(a.gridpatrol, cfg, db, fmt)
            r.update({"case": label, "format": fmt, "db_bytes": size})
            results.append(r)

    print(f"gridpatrol report, median of {RUNS} runs (min–max), workdir {work}")
    print(f"{'case':<52} {'format':<6} {'db MB':>8} {'median s':>9} {'min s':>7} {'max s':>7}")
    for r in results:
        print(f"{r['case']:<52} {r['format']:<6} {r['db_bytes'] / 1e6:>8.0f} "
              f"{r['median_s']:>9.3f} {r['min_s']:>7.3f} {r['max_s']:>7.3f}")
    doc = {"cells": CELLS, "events_that_day": EVENTS, "history_per_day": a.history_per_day,
           "runs": RUNS, "generation_s": gen, "results": results}
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
