"""`gridpatrol report --db A.db --db B.db`: one county report over two
villages' databases, each filled by its own real gridpatrold from its own
real broker, against figures worked out by hand (comments at each cell).

The county configuration given with -c has every village's cells (as the
county daemon's has); each site's cells are those its database's `cell`
table lists. Cell c01 exists in both villages, so it shows as
yunhua/c01 and longchi/c01; zz-99 is configured but no site has it.
"""
import csv
import io
import json
import os
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone

from harness import Broker, Daemon, publish, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
SH = timezone(timedelta(hours=8))

EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  litter: { label: "白色垃圾", patrol: false }
  fishing: { label: "水库钓鱼", alert: immediate }
  flood: { label: "防汛水位", value: { unit: cm, warn: 250, alarm: 300 } }
"""

# Every cell: a day between patrols, an hour's grace, active all day.
CELL = "    interval: 1d\n    grace: 1h\n    active: always\n"
COUNTY_CELLS = ("cells:\n"
                "  - id: yh-01\n    name: \"云华 1号网格\"\n" + CELL +
                "  - id: c01\n    name: \"共用 <网格>\"\n" + CELL +
                "  - id: lc-01\n    name: \"龙池 1号网格\"\n" + CELL +
                "  - id: zz-99\n    name: \"无人站点\"\n" + CELL)
YUNHUA_CELLS = ["yh-01", "c01"]
LONGCHI_CELLS = ["lc-01", "c01"]


def ts(day, hh, mm=0):
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SH)


def send(broker, cell, worker, typ, when, mid, **fields):
    doc = dict(fields, id=mid, ts=when.isoformat())
    publish(broker, f"patrol/{cell}/{worker}/{typ}", json.dumps(doc).encode())


def run(*args, check=True):
    r = subprocess.run([GRIDPATROL] + list(args), capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stderr.decode()}")
    return r


def one_line_error(r):
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("gridpatrol: "), err
    assert r.stdout == b""
    return err


def build_site(tmp, name, dbname, cells, msgs, known):
    d_dir = os.path.join(tmp, name)
    os.makedirs(d_dir)
    b = Broker(d_dir).start()
    d = Daemon(d_dir, b, cells=cells, events=EVENTS, db=os.path.join(d_dir, dbname)).start()
    try:
        for i, (cell, worker, typ, when, extra) in enumerate(msgs):
            send(b, cell, worker, typ, when, f"{name}{i}", **extra)
        wait_for(lambda: d.count() == len(msgs), 20, f"{name} fixture stored")
        assert d.stop() == 0
    finally:
        if d.alive():
            d.kill()
        b.stop()
    # As if the village daemon had run since three days before the day.
    con = sqlite3.connect(d.db, timeout=10)
    con.execute("UPDATE cell SET known_since = ?", (known,))
    con.commit()
    con.close()
    return d.db


def build_county(tmp):
    D = datetime.now(SH).date() - timedelta(days=2)
    P = D - timedelta(days=1)
    known = int(ts(D - timedelta(days=3), 0).timestamp())
    yunhua = build_site(tmp, "yunhua", "yunhua.db", YUNHUA_CELLS, [
        ("yh-01", "w001", "checkin", ts(D, 6), {}),
        ("yh-01", "w002", "checkin", ts(D, 20), {}),
        ("c01", "w001", "checkin", ts(P, 12), {}),
        ("c01", "w001", "litter", ts(D, 10), {}),          # not a patrol
    ], known)
    longchi = build_site(tmp, "longchi", "patrol.db", LONGCHI_CELLS, [
        ("c01", "w009", "checkin", ts(P, 23), {}),
        ("c01", "w009", "flood", ts(D, 8), {"value": 120}),
    ], known)
    conf = os.path.join(tmp, "county.yaml")
    with open(conf, "w") as f:
        f.write("storage:\n  path: /nonexistent/county.db\n"
                "timezone: Asia/Shanghai\n" + COUNTY_CELLS + EVENTS)
    return D, conf, yunhua, longchi


def expected(D, yunhua, longchi):
    def at(hh):
        return ts(D, hh).isoformat()
    none = {"value_min": None, "value_max": None, "alerts": 0}
    return {
        "date": D.isoformat(),
        "timezone": "Asia/Shanghai",
        "cells": [
            # Known since D-3, never patrolled before D: due D-2 00:00, so
            # overdue from midnight to the 06:00 patrol (21600 s): 75.0 %.
            # Gaps 00-06, 06-20 (50400 s), 20-24.
            {"site": "yunhua", "id": "yh-01", "cell": "yh-01", "name": "云华 1号网格",
             "patrols": 2, "workers": ["w001", "w002"], "first": at(6), "last": at(20),
             "longest_gap_s": 50400, "covered_pct": 75.0, "overdue_s": 21600,
             "events": {"checkin": 2}, **none, "late": 2},
            # Last patrol D-1 12:00: due D 12:00, overdue from 13:00 to
            # midnight (39600 s): 46800 / 86400 = 54.2 %. The litter report
            # is no patrol.
            {"site": "yunhua", "id": "yunhua/c01", "cell": "c01", "name": "共用 <网格>",
             "patrols": 0, "workers": [], "first": None, "last": None,
             "longest_gap_s": 86400, "covered_pct": 54.2, "overdue_s": 39600,
             "events": {"litter": 1}, **none, "late": 1},
            # Last patrol D-1 23:00, then 08:00: never a day and an hour
            # without one. Gaps 00-08, 08-24 (57600 s).
            {"site": "longchi", "id": "longchi/c01", "cell": "c01", "name": "共用 <网格>",
             "patrols": 1, "workers": ["w009"], "first": at(8), "last": at(8),
             "longest_gap_s": 57600, "covered_pct": 100.0, "overdue_s": 0,
             "events": {"flood": 1}, "value_min": 120.0, "value_max": 120.0, "alerts": 0,
             "late": 1},
            # Known since D-3, never patrolled: overdue all day.
            {"site": "longchi", "id": "lc-01", "cell": "lc-01", "name": "龙池 1号网格",
             "patrols": 0, "workers": [], "first": None, "last": None,
             "longest_gap_s": 86400, "covered_pct": 0.0, "overdue_s": 86400,
             "events": {}, **none, "late": 0},
        ],
        "sites": [
            {"site": "yunhua", "db": yunhua, "summary": {
                "cells": 2, "covered": 0, "never_patrolled": 1, "overdue": 2, "events": 3,
                "alerts_claimed": 0, "alerts_unclaimed": 0}},
            {"site": "longchi", "db": longchi, "summary": {
                "cells": 2, "covered": 1, "never_patrolled": 1, "overdue": 1, "events": 1,
                "alerts_claimed": 0, "alerts_unclaimed": 0}},
        ],
        "summary": {"cells": 4, "covered": 1, "never_patrolled": 2, "overdue": 3, "events": 4,
                    "alerts_claimed": 0, "alerts_unclaimed": 0},
    }


def test_county_report_matches_hand_computed_figures(tmp_path):
    tmp = str(tmp_path)
    D, conf, yunhua, longchi = build_county(tmp)
    dbs = ["--db", yunhua, "--db", f"longchi={longchi}"]
    day = ["--date", D.isoformat()]

    doc = json.loads(run("-c", conf, "report", *dbs, *day, "--format", "json").stdout)
    assert doc == expected(D, yunhua, longchi)
    # Options in any order, --db after the command too.
    again = json.loads(run("report", "--format", "json", *day, *dbs, "-c", conf).stdout)
    assert again == doc

    raw = run("-c", conf, "report", *dbs, *day, "--format", "csv").stdout
    assert raw.startswith(b"\xef\xbb\xbfdate,site,id,name,patrols,") and b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [(r["site"], r["id"]) for r in rows] == [
        ("yunhua", "yh-01"), ("yunhua", "yunhua/c01"), ("longchi", "longchi/c01"),
        ("longchi", "lc-01")]
    assert [r["covered_pct"] for r in rows] == ["75.0", "54.2", "100.0", "0.0"]
    assert rows[2]["value_min"] == "120" and rows[0]["workers"] == "w001;w002"

    text = run("-c", conf, "report", *dbs, *day).stdout.decode()
    lines = text.splitlines()
    assert lines[0].startswith(f"巡查日报 {D.isoformat()}（Asia/Shanghai，2 个站点）")
    head = next(i for i, l in enumerate(lines) if l.startswith("站点"))
    assert lines[head].split()[:3] == ["站点", "网格", "名称"]
    body = [l.split()[:2] for l in lines[head + 2:head + 6]]
    assert body == [["yunhua", "yh-01"], ["yunhua", "yunhua/c01"],
                    ["longchi", "longchi/c01"], ["longchi", "lc-01"]]
    summary = "网格 {} 个：全天覆盖 {} 个，当天未巡查 {} 个，曾超时 {} 个；事件共 {} 条。"
    assert lines[-3:] == ["yunhua：" + summary.format(2, 0, 1, 2, 3),
                          "longchi：" + summary.format(2, 1, 1, 1, 1),
                          "合计：" + summary.format(4, 1, 2, 3, 4)]
    assert "zz-99" not in text

    out = os.path.join(tmp, "county.html")
    run("-c", conf, "report", *dbs, *day, "--format", "html", "-o", out)
    html = open(out, encoding="utf-8").read()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert "2 个站点" in html and "各站点汇总" in html and "合计" in html
    assert "yunhua/c01" in html and "longchi/c01" in html and "zz-99" not in html
    assert "longchi · 共用 &lt;网格&gt;" in html and "<网格>" not in html
    for bad in ("<script", "<link", "src=", "href="):
        assert bad not in html.lower(), bad

    with open(conf, "a") as f:
        f.write("alerts:\n  language: en\n")
    lines = run("-c", conf, "report", *dbs, *day).stdout.decode().splitlines()
    assert lines[0].startswith(f"Patrol report {D.isoformat()} (Asia/Shanghai, 2 sites)")
    assert lines[-1] == ("Total: 4 cells: 1 fully covered, 2 not patrolled, 3 overdue at "
                         "some point; 4 events in all.")
    assert lines[-3].startswith("yunhua: 2 cells: 0 fully covered")

    # One --db is the single-site report, as before: every configured
    # cell, bare ids, no site fields.
    single = json.loads(run("-c", conf, "--db", yunhua, "report", *day, "--format",
                            "json").stdout)
    assert "sites" not in single
    assert [c["id"] for c in single["cells"]] == ["yh-01", "c01", "lc-01", "zz-99"]
    assert all("site" not in c for c in single["cells"])
    assert single["cells"][0] == {k: v for k, v in doc["cells"][0].items()
                                  if k not in ("site", "cell")}
    print(f"\ncounty report over 2 sites: {doc['summary']}")


def test_county_report_errors(tmp_path):
    tmp = str(tmp_path)
    D, conf, yunhua, longchi = build_county(tmp)
    # Both files are named after their stem: "patrol" twice.
    other = os.path.join(tmp, "copy")
    os.makedirs(other)
    twin = os.path.join(other, "patrol.db")
    with open(longchi, "rb") as src, open(twin, "wb") as dst:
        dst.write(src.read())
    err = one_line_error(run("-c", conf, "report", "--db", longchi, "--db", twin, check=False))
    assert "two databases for site 'patrol'" in err
    run("-c", conf, "report", "--db", longchi, "--db", f"copy={twin}")
    # Only report combines sites.
    one_line_error(run("-c", conf, "status", "--db", yunhua, "--db", longchi, check=False))
    one_line_error(run("-c", conf, "report", "--db", yunhua, "--db",
                       os.path.join(tmp, "none.db"), check=False))
    one_line_error(run("-c", conf, "report", "--db", yunhua, "--db", "=x.db", check=False))
    one_line_error(run("-c", conf, "report", "--db", yunhua, "--db", "a\tb=" + longchi,
                       check=False))
    # A village's configuration does not know the other village's cells.
    village = os.path.join(tmp, "village.yaml")
    with open(village, "w") as f:
        f.write("storage:\n  path: /nonexistent/v.db\ntimezone: Asia/Shanghai\n"
                "cells:\n  - id: yh-01\n" + EVENTS)
    err = one_line_error(run("-c", village, "report", "--db", yunhua, "--db", longchi,
                             check=False))
    assert "site 'patrol'" in err and "every site's cells" in err
