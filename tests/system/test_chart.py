"""`gridpatrol chart` end to end: days built by publishing through a real
mosquitto into the real gridpatrold, then the real CLI drawing the chart
PNG that the WeChat bridge posts.

The PNG is read back with the standard library only (zlib and a small
decoder of PNG's row filters below), and the checks look at pixels: the
bars of each cell in their state colours hour by hour, and ink in the
label column of every row, where the Chinese names are drawn.
"""
import os
import pty
import random
import resource
import signal
import struct
import subprocess
import time
import zlib
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt

import test_cli as fx
from harness import png_decode, png_header, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
WECHAT_MAX = 2 * 1024 * 1024  # WeCom's limit on an image message

PATROLLED = (0x1b, 0x5e, 0x20)
COVERED = (0xa5, 0xd6, 0xa7)
OVER_DARK, OVER_LIGHT = (0xb7, 0x1c, 0x1c), (0xf6, 0xb9, 0xb9)  # the hatching
INACTIVE = (0xf2, 0xf2, 0xf2)
BAR_COLOURS = {PATROLLED, COVERED, OVER_DARK, OVER_LIGHT, INACTIVE}


def px(rows, x, y):
    return tuple(rows[y][3 * x:3 * x + 3])


def bands(w, rows):
    """Cell rows of the chart: runs of image rows mostly filled with bar colours
    ([y0, y1) each) and the bar's x extent in each."""
    found, start = [], None
    for y, line in enumerate(rows + [b""]):
        xs = [x for x in range(0, len(line) // 3) if px(rows, x, y) in BAR_COLOURS] if line else []
        if len(xs) > w // 3:
            if start is None:
                start, x0, x1 = y, xs[0], xs[-1]
            x0, x1 = min(x0, xs[0]), max(x1, xs[-1])
        elif start is not None:
            found.append((start, y, x0, x1))
            start = None
    return found


def chart(d, *args, check=True, **kw):
    cmd = [GRIDPATROL, "-c", d.conf, "chart", *args]
    r = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} exited {r.returncode}: {r.stderr.decode()}")
    return r


# --------------------------------------------------------------------------
# (1) the fixture day of test_cli, pixel by pixel
# --------------------------------------------------------------------------

def test_chart_of_fixture_day(make_daemon, broker, tmp_path):
    d, D = fx.build_fixture_day(make_daemon, broker)
    out = tmp_path / "chart.png"
    t0 = time.monotonic()
    chart(d, "--date", D.isoformat(), "-o", str(out))
    took = time.monotonic() - t0
    data = out.read_bytes()
    w, h, rows = png_decode(data)
    print(f"\nfixture chart (4 cells): {w}x{h}, {len(data)} bytes, {took * 1000:.0f} ms")
    assert w == 1080 and 200 < h < 600
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]

    # One band of bars per cell, one above the other, all equally tall.
    b = bands(w, rows)
    assert len(b) == 4, b
    heights = {y1 - y0 for y0, y1, _, _ in b}
    assert len(heights) == 1 and min(heights) >= 15, b
    x0 = min(x for _, _, x, _ in b)
    x1 = max(x for _, _, _, x in b)
    hour_w = (x1 + 1 - x0) / 24
    assert 20 <= hour_w <= 40, (x0, x1)

    def hour(band, hr):
        """The colours inside one hour of a cell's bar (a margin off its edges)."""
        y0, y1 = b[band][0], b[band][1]
        xa, xb = int(x0 + hr * hour_w) + 3, int(x0 + (hr + 1) * hour_w) - 3
        return {px(rows, x, y) for x in range(xa, xb) for y in range(y0 + 2, y1 - 2)}

    # yh-01 (07:00-19:00, every 2h): patrols at 08, 09:30, 10, 13 (and 13:10);
    # overdue 07-08, 12:15-13, from 15:25; inactive at night.
    assert hour(0, 8) == {PATROLLED} and hour(0, 13) == {PATROLLED}
    assert {OVER_DARK, OVER_LIGHT} <= hour(0, 7) and OVER_DARK in hour(0, 16)
    assert COVERED in hour(0, 11) and INACTIVE in hour(0, 3) and INACTIVE in hour(0, 21)
    # yh-02: covered 07-10, overdue from 10:15 to 19:00, no patrol.
    assert hour(1, 8) == {COVERED} and OVER_DARK in hour(1, 14)
    assert not any(PATROLLED in hour(1, hr) for hr in range(24))
    # yh-03 (always active, never patrolled): hatched all day.
    assert all({OVER_DARK, OVER_LIGHT} <= hour(2, hr) for hr in range(24))
    # yh-04 (always active, 1d): patrols at 06 and 20, covered the rest.
    assert hour(3, 6) == {PATROLLED} and hour(3, 20) == {PATROLLED}
    assert hour(3, 0) == {COVERED} and hour(3, 12) == {COVERED}

    # Labels: dark ink left of the bars in every row; the three Chinese
    # names ("云华社区 1号网格（紫坪铺库岸）", …) carry far more of it than
    # "Hamlet 4", and the covered figure is drawn right of the bars.
    def ink(band, xa, xb):
        y0, y1 = b[band][:2]
        return sum(1 for y in range(y0 - 4, y1 + 4) for x in range(xa, xb)
                   if sum(px(rows, x, y)) < 3 * 110)
    labels = [ink(i, 0, x0 - 4) for i in range(4)]
    assert all(n > 40 for n in labels), labels
    assert min(labels[:3]) > 2 * labels[3], labels
    assert all(ink(i, x1 + 4, w) > 15 for i in range(4))
    # The title block: ink above the legend and the first band.
    assert sum(1 for y in range(0, 50) for x in range(0, 400)
               if sum(px(rows, x, y)) < 3 * 110) > 500

    # `-o -` into a pipe: the same picture on stdout.
    r = chart(d, "--date", D.isoformat(), "-o", "-")
    assert r.stdout[:8] == b"\x89PNG\r\n\x1a\n" and png_header(r.stdout)[:2] == (w, h)
    assert d.stop() == 0


def test_chart_errors(make_daemon, broker, tmp_path):
    d, D = fx.build_fixture_day(make_daemon, broker)
    day = D.isoformat()
    for args in ([], ["--date", day], ["--date", "2026-02-30", "-o", str(tmp_path / "a.png")],
                 ["--date", "someday", "-o", str(tmp_path / "a.png")],
                 ["--format", "json", "-o", str(tmp_path / "a.png")], ["extra", "-o", "x.png"]):
        r = chart(d, *args, check=False)
        err = r.stderr.decode()
        assert r.returncode == 2, (args, r.returncode, err)
        assert err.count("\n") == 1 and err.startswith("gridpatrol: "), err
    assert b"-o FILE.png" in chart(d, check=False).stderr
    assert not os.path.exists(tmp_path / "a.png")
    # `-o -` onto a terminal is refused like no -o at all.
    master, slave = pty.openpty()
    try:
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "chart", "--date", day, "-o", "-"],
                           stdout=slave, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 2 and b"-o FILE.png" in r.stderr, (r.returncode, r.stderr)

    # A folder that does not exist: exit 1, nothing created.
    missing = tmp_path / "no-such-dir" / "c.png"
    r = chart(d, "--date", day, "-o", str(missing), check=False)
    assert r.returncode == 1 and r.stderr.decode().startswith("gridpatrol: "), r
    assert not (tmp_path / "no-such-dir").exists()

    # A write that fails halfway (a 16 KiB file size limit, EFBIG): exit 1,
    # the previous file untouched, no temporary file left behind.
    target = tmp_path / "c.png"
    target.write_bytes(b"yesterday's chart")

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    r = chart(d, "--date", day, "-o", str(target), check=False, preexec_fn=small_files)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.decode().startswith("gridpatrol: cannot write"), r.stderr
    assert target.read_bytes() == b"yesterday's chart"
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (2) the HTML report's chart is the same as before the chart code moved
# --------------------------------------------------------------------------

def test_html_report_chart_unchanged(make_daemon, broker, tmp_path):
    """The page's chart markup, byte for byte as render.c wrote it before it
    moved to render_chart.c (geometry 210 + 24 × 22 + 58 units, rows 19)."""
    d, D = fx.build_fixture_day(make_daemon, broker)
    out = tmp_path / "r.html"
    fx.cli(d, "report", "--date", D.isoformat(), "--format", "html", "-o", str(out))
    html = out.read_text(encoding="utf-8")
    assert ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
            '<pattern id="gp-over" width="5" height="5" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)">') in html
    assert ('<svg class="legend" viewBox="0 0 796 18" role="img" '
            'xmlns="http://www.w3.org/2000/svg"><rect x="1" y="3" width="22" height="12" '
            'fill="#1b5e20"/><text x="28" y="13" font-size="11" fill="#222">有巡查</text>') in html
    assert ('<svg class="chart" viewBox="0 0 796 100" role="img" '
            'xmlns="http://www.w3.org/2000/svg"><text class="h" x="221" y="15">0</text>') in html
    assert '<text class="h" x="794" y="15" style="text-anchor:end">覆盖率</text>' in html
    # yh-03, third row: hatched all day, 0.0 %.
    assert ('<text x="0" y="73">河堤 &lt;3号&gt; &amp; &quot;沟渠&quot;</text>'
            '<rect x="210" y="61" width="528" height="16" fill="url(#gp-over)"/>'
            '<text class="p" x="794" y="73">0.0%</text>') in html
    assert ('<line x1="342" y1="22" x2="342" y2="98" stroke="#444444" stroke-width="0.8"/>'
            ) in html
    assert d.stop() == 0


# --------------------------------------------------------------------------
# (3) 1,000 cells: within WeChat's 2 MB, every row drawn
# --------------------------------------------------------------------------

def cells_block(n):
    out = ["cells:"]
    for i in range(n):
        out.append(f"  - id: c{i:04d}")
        out.append(f"    name: \"云华社区 {i}号网格{'（紫坪铺库岸）' if i % 4 == 0 else ''}\"")
        if i % 3 == 0:
            out.append("    interval: 2h")
        if i % 10 == 0:
            out.append("    active: always")
    return "\n".join(out) + "\n"


def publish_all(broker, msgs):
    """QoS 1 publishes over one paho connection, waiting for every PUBACK."""
    c = mqtt.Client(client_id=f"chart-test-{os.getpid()}")
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        infos = [c.publish(topic, payload, qos=1) for topic, payload in msgs]
        wait_for(lambda: all(i.is_published() for i in infos), 60, "PUBACKs")
    finally:
        c.loop_stop()
        c.disconnect()


def test_chart_1000_cells_within_wechat_limit(make_daemon, broker, tmp_path):
    n = 1000
    d = make_daemon(cells=cells_block(n), events=fx.EVENTS).start()
    D = datetime.now(fx.SH).date() - timedelta(days=2)
    rng = random.Random(14)
    msgs = []
    for i in range(n):
        for k in range(i % 6):  # 0 to 5 patrols a cell: some never, some often
            when = fx.ts(D, rng.randrange(6, 20), rng.randrange(60))
            msgs.append((f"patrol/c{i:04d}/w{i % 97:03d}/checkin",
                         f'{{"id": "m{i}-{k}", "ts": "{when.isoformat()}"}}'.encode()))
    publish_all(broker, msgs)
    wait_for(lambda: d.count() == len(msgs), 60, f"{len(msgs)} events stored")

    out = tmp_path / "big.png"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    chart(d, "--date", D.isoformat(), "-o", str(out))
    took = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    data = out.read_bytes()
    w, h, depth, ctype, _ = png_header(data)
    print(f"\n1,000-cell chart: {w}x{h}, {len(data)} bytes ({len(data) / 1048576:.2f} MiB), "
          f"{took:.2f} s, max RSS {max(rss, before) / 1024:.0f} MiB; {len(msgs)} events")
    assert len(data) <= WECHAT_MAX, len(data)
    assert w == 1080 and (depth, ctype) == (8, 2)

    raw = zlib.decompress(b"".join(
        data[p + 8:p + 8 + struct.unpack(">I", data[p:p + 4])[0]]
        for p in chunk_offsets(data) if data[p + 4:p + 8] == b"IDAT"))
    assert len(raw) == h * (w * 3 + 1)

    # Every row drawn at full height: the same database charted with a
    # configuration of its first 4 cells is 996 rows of that height shorter
    # (a chart cut short or squeezed would not be).
    def config_of(k):
        path = tmp_path / f"cells{k}.yaml"
        text = open(d.conf).read()
        path.write_text(text[:text.index("cells:\n")] + cells_block(k) + fx.EVENTS)
        return str(path)
    small = subprocess.run([GRIDPATROL, "-c", config_of(4), "chart", "--date", D.isoformat(),
                            "-o", "-"], capture_output=True, timeout=60, check=True).stdout
    w4, h4, rows = png_decode(small)
    assert (h - h4) % 996 == 0 and (h - h4) // 996 >= 20, (h, h4)
    assert len(bands(w4, rows)) == 4

    # More cells than 32,767 pixels hold at that height: rows shrink (1,600
    # cells), and past the smallest row the first cells that fit are drawn
    # with a line saying how many more there are (3,000 cells).
    for k in (1600, 3000):
        t0 = time.monotonic()
        r = subprocess.run([GRIDPATROL, "-c", config_of(k), "chart", "--date", D.isoformat(),
                            "-o", "-"], capture_output=True, timeout=120)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        wk, hk, _, _, _ = png_header(r.stdout)
        print(f"{k:,}-cell chart: {wk}x{hk}, {len(r.stdout)} bytes, {took:.2f} s")
        assert wk == 1080 and h < hk <= 32767 and len(r.stdout) <= WECHAT_MAX
        rows_h = (hk - h4) / (k - 4)
        if k == 1600:
            assert 14 <= rows_h < (h - h4) / 996, (hk, rows_h)
        else:
            assert hk > 32767 - 14 - 40, hk
    assert d.stop() == 0


def chunk_offsets(data):
    pos = 8
    while pos < len(data):
        yield pos
        pos += 12 + struct.unpack(">I", data[pos:pos + 4])[0]
