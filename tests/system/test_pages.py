"""The HTML pages (`--format html` of status, alerts, workers and report) as
a phone's browser shows them: a fixture built through the real broker and
daemon, each page written by the real CLI, then loaded in headless
Chromium at 390 px wide. The DOM Chromium built (not the source) must hold
the fixture's figures; the screenshots must show no content past the
page's right margin (a table wider than the phone would run through it);
device text must arrive as text, not markup.
"""
import html.parser
import json
import os
import shutil
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from harness import DEFAULT_EVENTS, Recorder, png_decode, png_header, publish, record_sink, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
CHROMIUM = "/usr/bin/chromium"
SH = timezone(timedelta(hours=8))
PHONE_W, PHONE_H = 390, 844
# Tall enough for every table of the fixture's pages; the width is what the
# overflow check is about.
TALL_H = 3200

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")

EVENTS = DEFAULT_EVENTS + '  claim: { label: "认领", claim: true, patrol: false }\n'
HOSTILE_NOTE = '<script>alert("x")</script> & \'q\''
HOSTILE_NAME = '越界 "网格" <script>alert(1)</script>'


def artifacts_dir(tmp_path):
    """Where the screenshots stay after the test: GRIDPATROL_ARTIFACTS, else
    the build's meson-logs (next to the gridpatrol under test)."""
    base = os.environ.get("GRIDPATROL_ARTIFACTS")
    if not base:
        base = os.path.join(os.path.dirname(os.path.abspath(GRIDPATROL)), "meson-logs")
    out = os.path.join(base, "pages", tmp_path.name)
    os.makedirs(out, exist_ok=True)
    return out


def cells_yaml(idle_window):
    return ("cells:\n"
            "  - id: p-ok\n    name: \"正常网格 <ok>\"\n    interval: 4h\n"
            "    active: always\n    workers: [w017]\n"
            "  - id: p-soon\n    name: \"将到期网格\"\n    interval: 1h\n    grace: 15m\n"
            "    active: always\n    workers: [w021]\n"
            f"  - id: p-over\n    name: {json.dumps(HOSTILE_NAME, ensure_ascii=False)}\n"
            "    interval: 1h\n    grace: 5m\n    repeat: 1h\n    active: always\n"
            "    workers: [w030]\n"
            "  - id: p-pause\n    name: \"暂停网格\"\n    interval: 1h\n    active: always\n"
            "  - id: p-idle\n    name: \"休息网格\"\n"
            f"    active: \"{idle_window}\"\n")


def alerts_yaml(rec):
    return ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n  claim_for: 1h\n"
            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n"
            "  sinks:\n" + record_sink("wechat", rec.dir))


def cli(d, *args):
    r = subprocess.run([GRIDPATROL, "-c", d.conf, *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, (args, r.stderr)
    return r


def build_fixture(make_daemon, broker, tmp_path):
    """Five cells, one in each state, an overdue alert claimed by w017 and
    an event alert whose note is hostile markup."""
    now = datetime.now(SH)
    # p-idle's one active hour is far from now: outside active hours.
    idle = "18:00-19:00" if now.hour < 12 else "05:00-06:00"
    rec = Recorder(str(tmp_path / "sink"))
    d = make_daemon(cells=cells_yaml(idle), events=EVENTS, extra=alerts_yaml(rec)).start()
    # Patrols: p-ok 10 min ago (due in 3 h 50), p-soon 40 min ago (due in
    # 20 min: due soon), p-over 3 h ago (due 2 h ago), p-pause 5 min ago,
    # p-idle a minute ago (outside its window).
    msgs = [("p-ok", "w017", 10), ("p-soon", "w021", 40), ("p-over", "w030", 180),
            ("p-pause", "w017", 5), ("p-idle", "w021", 1)]
    for i, (cell, worker, ago) in enumerate(msgs):
        when = (now - timedelta(minutes=ago)).isoformat()
        publish(broker, f"patrol/{cell}/{worker}/checkin",
                json.dumps({"id": f"pg{i}", "ts": when}).encode())
    wait_for(lambda: d.count() == len(msgs), 20, "patrols stored")
    assert d.stop() == 0
    # As if the daemon had known the cells for a day: p-over is overdue
    # from its patrol's deadline, not from the daemon's first start.
    con = sqlite3.connect(d.db, timeout=10)
    con.execute("UPDATE cell SET known_since = ?", (int(time.time()) - 86400,))
    con.commit()
    con.close()
    d.start()
    wait_for(lambda: rec.alerts("overdue"), 20, "p-over's overdue alert")
    publish(broker, "patrol/p-over/w017/claim", b'{"id":"cl1"}')
    wait_for(lambda: rec.alerts("claimed"), 20, "the claimed alert")
    publish(broker, "patrol/p-ok/w021/fishing",
            json.dumps({"id": "fish1", "note": HOSTILE_NOTE}).encode())
    wait_for(lambda: rec.alerts("event"), 20, "the event alert")
    cli(d, "pause", "p-pause", "--reason", "修路")
    # Every alert delivered, so the delivery column is settled.
    wait_for(lambda: json.loads(cli(d, "alerts", "--pending", "--format", "json").stdout)
             == {"alerts": []}, 20, "every alert delivered")
    assert d.stop() == 0
    return d


class Dom(html.parser.HTMLParser):
    """What the tests read from a page: table rows (cell texts), badge
    classes with their words, <time> values, nav links, meta tags, text."""

    def __init__(self):
        super().__init__()
        self.tables = []        # [(class, [[cell text, ...], ...])]
        self.badges = []        # [(class, text)]
        self.times = []         # [datetime attribute]
        self.links = []         # [href]
        self.metas = []         # [dict(attrs)]
        self.scripts = 0
        self.text = []
        self._cell = None
        self._badge = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append((a.get("class", ""), []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ""
        elif tag == "span" and "st" in a.get("class", "").split():
            self._badge = [a["class"], ""]
        elif tag == "time":
            self.times.append(a.get("datetime"))
        elif tag == "a":
            self.links.append(a.get("href"))
        elif tag == "meta":
            self.metas.append(a)
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "span" and self._badge:
            self.badges.append(tuple(self._badge))
            self._badge = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data
        if self._badge:
            self._badge[1] += data

    def table(self, cls):
        for c, rows in self.tables:
            if cls in c.split():
                return rows
        raise AssertionError(f"no table of class {cls}: {[c for c, _ in self.tables]}")

    def all_text(self):
        return "".join(self.text)


def chromium(page, tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", *args, f"file://{page}"],
                       capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return r


def dom_of(page, tmp_path):
    r = chromium(page, tmp_path, f"--window-size={PHONE_W},{PHONE_H}", "--dump-dom")
    assert r.stdout.startswith("<!DOCTYPE html>"), r.stderr[-500:]
    p = Dom()
    p.feed(r.stdout)
    return p


def ink_extent(path):
    """(rightmost x of any non-white pixel, number of rows with ink)."""
    with open(path, "rb") as f:
        w, h, rows = png_decode(f.read())
    bpp = 3
    right, inked = -1, 0
    for line in rows:
        row_right = -1
        for x in range(w - 1, -1, -1):
            px = line[x * bpp:x * bpp + 3]
            if min(px) < 235:
                row_right = x
                break
        if row_right >= 0:
            inked += 1
            right = max(right, row_right)
    return right, inked


def check_phone(page, tmp_path, name, keep):
    """The phone screenshot (kept, path printed) and the overflow check:
    the body keeps a 3 mm (11 px) margin at 390 px; a table that widened
    the page would put ink in it, right up to the screen's edge."""
    shot = os.path.join(keep, f"{name}.png")
    r = chromium(page, tmp_path, f"--window-size={PHONE_W},{PHONE_H}", f"--screenshot={shot}")
    assert os.path.exists(shot), r.stderr[-2000:]
    with open(shot, "rb") as f:
        w, h = png_header(f.read(64))[:2]
    assert (w, h) == (PHONE_W, PHONE_H)
    tall = os.path.join(keep, f"{name}-full.png")
    r = chromium(page, tmp_path, f"--window-size={PHONE_W},{TALL_H}", "--hide-scrollbars",
                 f"--screenshot={tall}")
    assert os.path.exists(tall), r.stderr[-2000:]
    right, inked = ink_extent(tall)
    print(f"\n{name}: phone screenshot {shot}, full height {tall}: ink up to x={right} "
          f"of {PHONE_W}, {inked} rows with ink")
    assert inked > 100, "the page looks empty"
    assert right <= PHONE_W - 8, f"{name}: content reaches x={right}, past the right margin"


def write_pages(d, tmp_path, suffix=""):
    pages = {}
    for name, args in (("status", ["status"]),
                       ("alerts", ["alerts", "--since", "yesterday"]),
                       ("workers", ["workers", "--from", "yesterday", "--to", "today"]),
                       ("report", ["report", "--date", "today"])):
        path = tmp_path / f"{name}{suffix}.html"
        cli(d, *args, "--format", "html", "-o", str(path))
        pages[name] = path
    return pages


def check_standalone(src):
    """A file from the CLI: no scripts, nothing fetched, no nav, no refresh."""
    low = src.lower()
    for bad in ("<script", "src=", "href=", "url(http", "<link", "@import", "<nav",
                "http-equiv"):
        assert bad not in low, bad
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in src
    assert "@media print" in src


def test_pages_zh(make_daemon, broker, tmp_path):
    d = build_fixture(make_daemon, broker, tmp_path)
    keep = artifacts_dir(tmp_path)
    pages = write_pages(d, tmp_path)
    for name, path in pages.items():
        src = path.read_text(encoding="utf-8")
        assert src.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in src, name
        check_standalone(src)
        # Hostile text from the configuration and devices is text.
        assert "<script>alert" not in src, name
        check_phone(path, tmp_path, name, keep)
    # One copy of the style sheet: the report's and the listings' agree.
    css = [p.read_text(encoding="utf-8").split("<style>")[1].split("</style>")[0]
           for p in pages.values()]
    assert len(set(css)) == 1

    # now: every cell, a badge per state (class and word), counts on top.
    dom = dom_of(pages["status"], tmp_path)
    assert dom.scripts == 0
    rows = dom.table("cells")
    assert rows[0] == ["网格", "名称", "状态", "上次巡查", "巡查人", "应巡查时间"], rows[0]
    by_id = {r[0]: r for r in rows[1:]}
    assert set(by_id) == {"p-ok", "p-soon", "p-over", "p-pause", "p-idle"}
    want = {"p-ok": "正常", "p-soon": "即将到期", "p-over": "超时", "p-pause": "暂停",
            "p-idle": "非巡查时段"}
    assert {k: r[2] for k, r in by_id.items()} == want, by_id
    assert sorted(dom.badges) == sorted(
        (f"st st-{s}", want[c]) for c, s in (("p-ok", "ok"), ("p-soon", "due_soon"),
                                            ("p-over", "overdue"), ("p-pause", "paused"),
                                            ("p-idle", "inactive")))
    assert by_id["p-over"][1] == HOSTILE_NAME          # as text, in the DOM
    # The fishing report counts as presence (DEFAULT_EVENTS): w021 was last.
    assert by_id["p-over"][4] == "w030" and by_id["p-ok"][4] == "w021"
    assert by_id["p-pause"][5] == "—"                  # paused: no due time
    text = dom.all_text()
    assert "共 5 个网格：超时 1 个，即将到期 1 个，正常 1 个，暂停 1 个，非巡查时段 1 个。" in text
    assert "自动刷新" not in text and not any("http-equiv" in m for m in dom.metas)
    # Times are machine-readable too, in the village's offset.
    assert dom.times and all(t.endswith("+08:00") for t in dom.times), dom.times

    # alerts: the overdue alert claimed by w017, the hostile event alert.
    dom = dom_of(pages["alerts"], tmp_path)
    rows = dom.table("alerts")
    assert rows[0] == ["编号", "时间", "类型", "网格", "内容", "认领人", "认领用时",
                       "处理用时", "送达情况"], rows[0]
    kinds = {r[2]: r for r in rows[1:]}
    assert {"overdue", "claimed", "event"} <= set(kinds), kinds
    over = kinds["overdue"]
    assert over[3] == "p-over" and over[5] == "w017" and over[6] != "—", over
    assert over[7] == "—"                              # still overdue: not resolved
    assert all(r[8] == "wechat 已送达" for r in rows[1:]), rows
    ev = kinds["event"]
    assert HOSTILE_NOTE in ev[4], ev
    assert f"共 {len(rows) - 1} 条" in dom.all_text()

    # workers: w017's patrol and claim, the configured ones listed.
    dom = dom_of(pages["workers"], tmp_path)
    rows = dom.table("workers")
    assert rows[0][:6] == ["人员", "巡查", "网格数", "上报", "补报", "认领"], rows[0]
    by_w = {r[0]: r for r in rows[1:]}
    assert {"w017", "w021", "w030"} <= set(by_w), by_w
    assert by_w["w017"][1] == "2" and by_w["w017"][5] == "1", by_w["w017"]
    assert "巡查签到 2" in by_w["w017"][3] and "认领 1" in by_w["w017"][3], by_w["w017"]
    assert by_w["w021"][1] == "3" and "水库钓鱼 1" in by_w["w021"][3], by_w["w021"]
    assert by_w["w030"][1] == "1" and by_w["w030"][5] == "0", by_w["w030"]

    # report: the cells, and still no nav in a file.
    dom = dom_of(pages["report"], tmp_path)
    text = dom.all_text()
    assert "网格巡查日报" in text and HOSTILE_NAME in text and "网格 5 个" in text
    assert not [h for h in dom.links if h and h.startswith("/")]


def test_pages_en(make_daemon, broker, tmp_path):
    d = build_fixture(make_daemon, broker, tmp_path)
    with open(d.conf, encoding="utf-8") as f:
        conf = f.read()
    with open(d.conf, "w", encoding="utf-8") as f:
        f.write(conf.replace("alerts:\n", "alerts:\n  language: en\n", 1))
    keep = artifacts_dir(tmp_path)
    pages = write_pages(d, tmp_path, "-en")
    for name, path in pages.items():
        src = path.read_text(encoding="utf-8")
        assert '<html lang="en">' in src, name
        check_standalone(src)
        check_phone(path, tmp_path, f"{name}-en", keep)

    dom = dom_of(pages["status"], tmp_path)
    rows = dom.table("cells")
    assert rows[0] == ["Cell", "Name", "State", "Last patrol", "Worker", "Due"], rows[0]
    states = {r[0]: r[2] for r in rows[1:]}
    assert states == {"p-ok": "ok", "p-soon": "due soon", "p-over": "OVERDUE",
                      "p-pause": "paused", "p-idle": "inactive"}, states
    assert "5 cells: 1 OVERDUE, 1 due soon, 1 ok, 1 paused, 1 inactive." in dom.all_text()

    dom = dom_of(pages["alerts"], tmp_path)
    rows = dom.table("alerts")
    assert rows[0][:3] == ["Id", "Time", "Kind"] and rows[0][-1] == "Delivery", rows[0]
    assert all(r[-1] == "wechat delivered" for r in rows[1:]), rows
    assert f"{len(rows) - 1} rows" in dom.all_text()

    dom = dom_of(pages["workers"], tmp_path)
    rows = dom.table("workers")
    assert rows[0][0] == "Worker" and rows[0][-1] == "Rapid", rows[0]
    assert "Worker sheet" in dom.all_text()

    dom = dom_of(pages["report"], tmp_path)
    assert "Grid patrol daily report" in dom.all_text()
