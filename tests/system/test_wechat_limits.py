"""contrib/wechat-bridge against a fake WeCom robot that enforces WeCom's
limits: text content at most 2048 bytes and markdown at most 4096, valid
UTF-8 only, an image's md5 matching its base64-decoded bytes and at most
2 MB, and errcode 45009 for a message past N in any window (20 in 60 s at
WeCom; the tests give the bridge and the fake the same shorter window with
--rate so that pacing shows in seconds, not minutes).

The fake is http.server on a free loopback port, in a thread; it records
every request with its arrival time and its answer, in order. It can be
slow (each answer after a delay) and can hold one request unanswered until
its client hangs up, as a link does when the daemon kills the bridge. The bridge
runs as gridpatrold runs it: the delivery JSON on stdin, GRIDPATROL_* in the
environment, a chart from a stub `gridpatrol` (or the real one, when it has
the `chart` command).
"""
import base64
import fcntl
import hashlib
import http.server
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import zlib
from datetime import datetime, timedelta, timezone

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BRIDGE = os.path.join(HERE, "..", "..", "contrib", "wechat-bridge", "wechat-bridge")
GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
KEY = "limits-key-5f0c2e71"
IMAGE_MAX = 2 * 1024 * 1024


class FakeRobot(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, limit=20, window=60.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.limit, self.window = limit, window
        self.lock = threading.Lock()
        self.log = []            # every request: t, key, msg (or None), errcode
        self.force_45009 = 0     # answer 45009 to this many requests first (-1: always)
        self.arrived = []        # the arrival time of every request, answered or not
        self.delay = 0.0         # seconds before each answer
        self.hold = None         # the index of a request held until its client is gone

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/cgi-bin/webhook/send?key={KEY}"

    def accepted(self):
        return [r["msg"] for r in self.log if r["errcode"] == 0]

    def codes(self):
        return [r["errcode"] for r in self.log]

    def judge(self, key, raw):
        """WeCom's answer to one request, as (errcode, errmsg, msg)."""
        try:
            msg = json.loads(raw.decode("utf-8", "strict"))
        except UnicodeDecodeError:
            return 40033, "invalid charset, UTF-8 only", None
        except ValueError:
            return 40016, "invalid json", None
        kind = msg.get("msgtype") if isinstance(msg, dict) else None
        if kind in ("text", "markdown"):
            c = msg.get(kind, {}).get("content")
            if not isinstance(c, str) or not c.strip():
                return 44004, "empty content", msg
            if len(c.encode("utf-8")) > (2048 if kind == "text" else 4096):
                return 40058, f"{kind} content too long", msg
        elif kind == "image":
            img = msg.get("image", {})
            try:
                data = base64.b64decode(img.get("base64", ""), validate=True)
            except ValueError:
                return 40009, "invalid base64", msg
            if hashlib.md5(data).hexdigest() != img.get("md5"):
                return 301019, "md5 mismatch", msg
            if len(data) > IMAGE_MAX:
                return 40009, "image too large", msg
            if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8")):
                return 40009, "jpg or png only", msg
        else:
            return 40008, "invalid message type", msg
        with self.lock:
            now = time.time()
            if self.force_45009:
                self.force_45009 -= 1 if self.force_45009 > 0 else 0
                return 45009, "api freq out of limit", msg
            recent = [r for r in self.log
                      if r["key"] == key and r["errcode"] == 0 and r["t"] > now - self.window]
            if len(recent) >= self.limit:
                return 45009, "api freq out of limit", msg
        return 0, "ok", msg


class Handler(http.server.BaseHTTPRequestHandler):
    def gone(self, timeout):
        """True once the client has closed the connection (within timeout)."""
        r, _, _ = select.select([self.connection], [], [], timeout)
        try:
            return bool(r) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("key", [""])[0]
        srv = self.server
        with srv.lock:
            index = len(srv.arrived)
            srv.arrived.append(time.time())
        # A request whose client went away before the answer was never
        # taken: recorded with errcode None, so not among accepted().
        if index == srv.hold:
            assert self.gone(60), "the held client never hung up"
            with srv.lock:
                srv.log.append({"t": time.time(), "key": key, "msg": None, "errcode": None})
            return
        if srv.delay and self.gone(srv.delay):
            with srv.lock:
                srv.log.append({"t": time.time(), "key": key, "msg": None, "errcode": None})
            return
        code, why, msg = srv.judge(key, raw)
        with srv.lock:
            # Counted under the same lock as the window check: two requests
            # racing in cannot both take the last slot.
            srv.log.append({"t": time.time(), "key": key, "msg": msg, "errcode": code})
        data = json.dumps({"errcode": code, "errmsg": why}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def robot(limit=20, window=60.0):
    srv = FakeRobot(limit, window)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def wecom():
    made = []

    def make(**kw):
        made.append(robot(**kw))
        return made[-1]

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def png(extra=b""):
    """A real 2×1 PNG (optionally followed by junk, to make it big)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"\x00\xff\x00\x00\x00\x00\xff"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"") + extra)


def digest_doc(text, date="2026-11-24", did="wechat-000200", with_date=True):
    a = {"alert_id": 200, "kind": "digest", "cell": None, "cell_name": None,
         "at": f"{date}T20:00:00+08:00", "workers": [], "cells": 5, "patrolled": 4,
         "text": text}
    if with_date:
        a["date"] = date
    return json.dumps({"delivery_id": did, "sink": "wechat", "text": text, "alerts": [a]},
                      ensure_ascii=False)


def start(tmp_path, url, text, args=(), kind="digest", did="wechat-000200", doc=None,
          env_extra=None, group=False):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRIDPATROL_", "WECHAT_", "CREDENTIALS_DIRECTORY",
                                "STATE_DIRECTORY"))}
    env.update({"GRIDPATROL_TEXT": text, "GRIDPATROL_DELIVERY_ID": did,
                "GRIDPATROL_KIND": kind, "WECHAT_WEBHOOK_URL": url,
                "STATE_DIRECTORY": str(tmp_path / "state")})
    env.update(env_extra or {})
    # group: its own process group, as the daemon runs it (and kills it).
    p = subprocess.Popen([BRIDGE, "--group", "yunhua", *args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=group)
    try:
        p.stdin.write((doc if doc is not None else digest_doc(text, did=did)).encode("utf-8"))
        p.stdin.close()
    except BrokenPipeError:
        pass  # a usage error exits before reading; the daemon ignores this too
    return p


def finish(p, timeout=60):
    out, err = p.stdout.read(), p.stderr.read()
    p.wait(timeout)
    return p.returncode, out.decode("utf-8"), err.decode("utf-8")


def run(tmp_path, url, text, args=(), **kw):
    return finish(start(tmp_path, url, text, args, **kw))


def stub_gridpatrol(tmp_path, image=None, rc=0, message=""):
    """A stand-in `gridpatrol` that records its argv and writes `image`
    to the -o file."""
    (tmp_path / "stub.png").write_bytes(image if image is not None else png())
    stub = tmp_path / "gridpatrol-stub"
    stub.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > '{tmp_path}/stub.argv'\n"
        "out=\n"
        "while [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
        f"[ {rc} -eq 0 ] || {{ echo '{message}' >&2; exit {rc}; }}\n"
        f"cp '{tmp_path}/stub.png' \"$out\"\n")
    stub.chmod(0o755)
    return str(stub)


def long_digest():
    lines = [f"【今日巡查】2026-11-24：云华社区 {i}号网格（紫坪铺库岸）已巡查，上报 {i} 条。"
             for i in range(60)]
    # One line alone longer than a message, all three-byte characters with an
    # ASCII byte in front, so a cut at byte 2048 would fall mid-character.
    lines.insert(30, "x" + "未巡查网格" * 200)
    return "\n".join(lines)


def check_pieces(pieces, text, limit):
    for p in pieces:
        assert len(p.encode("utf-8")) <= limit
    # Pieces meet at a line break (dropped) or inside an over-long line.
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    joined = pieces[0]
    for p in pieces[1:]:
        joined += ("\n" + p) if text.startswith(joined + "\n" + p) else p
    assert joined == text


def test_long_digest_arrives_in_pieces_in_order(tmp_path, wecom):
    w = wecom()
    text = long_digest()
    assert len(text.encode()) > 3 * 2048
    rc, out, err = run(tmp_path, w.url, text, ["--no-chart"])
    assert rc == 0, err
    assert set(w.codes()) == {0}
    msgs = w.accepted()
    assert len(msgs) > 3 and all(m["msgtype"] == "text" for m in msgs)
    check_pieces([m["text"]["content"] for m in msgs], text, 2048)
    # Pieces are as full as the lines allow: WeCom's limit, not a lower one.
    assert max(len(m["text"]["content"].encode()) for m in msgs) > 2000


def test_markdown_pieces_up_to_4096(tmp_path, wecom):
    w = wecom()
    text = long_digest()
    rc, out, err = run(tmp_path, w.url, text, ["--no-chart", "--markdown"])
    assert rc == 0, err
    assert set(w.codes()) == {0}
    msgs = w.accepted()
    assert len(msgs) > 1 and all(m["msgtype"] == "markdown" for m in msgs)
    pieces = [m["markdown"]["content"] for m in msgs]
    check_pieces(pieces, text, 4096)
    assert max(len(p.encode()) for p in pieces) > 2048


def test_digest_posts_text_then_chart(tmp_path, wecom):
    w = wecom()
    image = png()
    stub = stub_gridpatrol(tmp_path, image)
    text = "【今日巡查】2026-11-24：5 个网格中 4 个已巡查。"
    rc, out, err = run(tmp_path, w.url, text,
                       ["--gridpatrol", stub, "--config", "/etc/gp.yaml", "--db", "/tmp/p.db"])
    assert rc == 0, err
    assert w.codes() == [0, 0]
    first, second = w.accepted()
    assert first == {"msgtype": "text", "text": {"content": text}}
    assert second["msgtype"] == "image"
    assert base64.b64decode(second["image"]["base64"]) == image
    assert second["image"]["md5"] == hashlib.md5(image).hexdigest()
    argv = (tmp_path / "stub.argv").read_text().splitlines()
    assert argv[:7] == ["-c", "/etc/gp.yaml", "--db", "/tmp/p.db", "chart", "--date",
                        "2026-11-24"]
    assert argv[7] == "-o" and argv[8].endswith(".png") and len(argv) == 9
    assert "1 chart" in out


def test_digest_date_from_at_when_no_date_field(tmp_path, wecom):
    w = wecom()
    stub = stub_gridpatrol(tmp_path)
    text = "[Daily patrol] 2026-11-23: 4 of 5 cells patrolled."
    doc = digest_doc(text, date="2026-11-23", with_date=False)
    rc, out, err = run(tmp_path, w.url, text, ["--gridpatrol", stub], doc=doc)
    assert rc == 0, err
    assert [m["msgtype"] for m in w.accepted()] == ["text", "image"]
    assert "--date\n2026-11-23\n" in (tmp_path / "stub.argv").read_text()


def test_no_chart_for_other_kinds_or_when_off(tmp_path, wecom):
    w = wecom()
    stub = stub_gridpatrol(tmp_path)
    text = "【巡查提醒】云华社区 1号网格已 4小时 未巡查。"
    doc = json.dumps({"delivery_id": "wechat-000201", "sink": "wechat", "text": text,
                      "alerts": [{"alert_id": 201, "kind": "overdue", "cell": "yh-01",
                                  "text": text}]}, ensure_ascii=False)
    rc, out, err = run(tmp_path, w.url, text, ["--gridpatrol", stub], kind="overdue",
                       did="wechat-000201", doc=doc)
    assert rc == 0, err
    rc, out, err = run(tmp_path, w.url, "【今日巡查】2026-11-24：…",
                       ["--gridpatrol", stub, "--no-chart"])
    assert rc == 0, err
    assert [m["msgtype"] for m in w.accepted()] == ["text", "text"]
    assert not (tmp_path / "stub.argv").exists()


@pytest.mark.parametrize("case", ["fails", "too_big", "not_png", "missing"])
def test_chart_trouble_still_delivers_text(tmp_path, wecom, case):
    w = wecom()
    if case == "fails":
        stub = stub_gridpatrol(tmp_path, rc=3, message="no such date")
        why = "gridpatrol chart exit 3: no such date"
    elif case == "too_big":
        stub = stub_gridpatrol(tmp_path, png(b"\0" * IMAGE_MAX))
        why = "WeCom takes at most 2097152"
    elif case == "not_png":
        stub = stub_gridpatrol(tmp_path, b"GIF89a")
        why = "wrote no PNG"
    else:
        stub = str(tmp_path / "nowhere" / "gridpatrol")
        why = "cannot run"
    text = "【今日巡查】2026-11-24：5 个网格中 4 个已巡查。"
    rc, out, err = run(tmp_path, w.url, text, ["--gridpatrol", stub])
    assert rc == 0, err
    assert w.codes() == [0]
    assert w.accepted()[0]["text"]["content"] == text
    assert "no chart" in out and why in out


def test_chart_at_the_size_limit_is_sent(tmp_path, wecom):
    w = wecom()
    image = png()
    image += b"\0" * (IMAGE_MAX - len(image))
    stub = stub_gridpatrol(tmp_path, image)
    rc, out, err = run(tmp_path, w.url, "【今日巡查】2026-11-24：…", ["--gridpatrol", stub])
    assert rc == 0, err
    assert w.codes() == [0, 0]
    assert len(base64.b64decode(w.accepted()[1]["image"]["base64"])) == IMAGE_MAX


def real_chart_works():
    try:
        r = subprocess.run([GRIDPATROL, "chart", "--help"], capture_output=True, timeout=20)
    except OSError:
        return False
    return r.returncode == 0


@pytest.mark.skipif(not real_chart_works(),
                    reason="this gridpatrol has no `chart` command (branch chart not merged)")
def test_digest_with_the_real_chart(tmp_path, wecom, make_daemon):
    w = wecom()
    d = make_daemon()
    d.start()
    d.stop()
    day = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d")
    text = f"【今日巡查】{day}：2 个网格中 0 个已巡查。"
    rc, out, err = run(tmp_path, w.url, text,
                       ["--gridpatrol", GRIDPATROL, "--config", d.conf, "--db", d.db],
                       doc=digest_doc(text, date=day))
    assert rc == 0, err
    assert w.codes() == [0, 0], out
    img = base64.b64decode(w.accepted()[1]["image"]["base64"])
    assert img.startswith(b"\x89PNG\r\n\x1a\n") and len(img) <= IMAGE_MAX


def test_concurrent_runs_keep_the_rate_and_order(tmp_path, wecom):
    # 4 runs at once, 3 messages each, through a robot that takes 3 in any
    # 2 s: they must queue, pace, and still get every message out.
    w = wecom(limit=3, window=2.0)
    runs = []
    for n in range(4):
        text = "\n".join(f"run {n} 第{i}段 " + "巡" * 600 for i in range(3))
        runs.append((n, text, start(tmp_path, w.url, text, ["--rate", "3/2", "--max-wait", "30"],
                                    kind="overdue", did=f"wechat-00030{n}",
                                    doc=json.dumps({"text": text, "alerts": []}))))
    for n, text, p in runs:
        rc, out, err = finish(p)
        assert rc == 0, err
    assert 45009 not in w.codes()
    msgs = [m["text"]["content"] for m in w.accepted()]
    assert len(msgs) == 12
    # Each run's messages arrive together and in order.
    for k in range(0, 12, 3):
        n = msgs[k].split(" ")[1]
        assert [m.split(" ")[:2] for m in msgs[k:k + 3]] == \
            [["run", n]] * 3
        assert [m.split(" ")[2] for m in msgs[k:k + 3]] == ["第0段", "第1段", "第2段"]
    # The fake's own clock: never more than 3 in 2 s, so pacing did happen.
    ts = [r["t"] for r in w.log]
    assert all(ts[i + 3] - ts[i] >= 2.0 for i in range(len(ts) - 3))
    assert ts[-1] - ts[0] >= 6.0


def test_45009_once_is_retried(tmp_path, wecom):
    w = wecom()
    w.force_45009 = 1
    text = "【巡查提醒】云华社区 1号网格已 4小时 未巡查。"
    rc, out, err = run(tmp_path, w.url, text, ["--rate", "20/3"], kind="overdue",
                       doc=json.dumps({"text": text}))
    assert rc == 0, err
    assert w.codes() == [45009, 0]
    assert "45009" in out


def test_45009_always_fails_within_the_bound(tmp_path, wecom):
    w = wecom()
    w.force_45009 = -1
    text = "【巡查提醒】云华社区 1号网格已 4小时 未巡查。"
    t0 = time.monotonic()
    rc, out, err = run(tmp_path, w.url, text, ["--rate", "20/3", "--max-wait", "2"],
                       kind="overdue", doc=json.dumps({"text": text}))
    took = time.monotonic() - t0
    assert rc == 1
    assert "45009" in err
    assert 2 <= len(w.log) <= 4
    assert took < 2 + 5


def test_rate_wait_past_max_wait_fails_and_retry_goes_on(tmp_path, wecom):
    w = wecom()
    text = "\n".join(f"第{i}段 " + "巡" * 600 for i in range(4))
    doc = json.dumps({"text": text})
    # 2 messages per 30 s and 1 s to wait: the first two go, then it stops.
    rc, out, err = run(tmp_path, w.url, text, ["--rate", "2/30", "--max-wait", "1"],
                       kind="overdue", doc=doc)
    assert rc == 1
    assert "--max-wait" in err
    assert len(w.accepted()) == 2
    # The daemon's retry of the same delivery posts only what is missing.
    rc, out, err = run(tmp_path, w.url, text, ["--rate", "20/30"], kind="overdue", doc=doc)
    assert rc == 0, err
    assert "2 of 4" in out
    got = [m["text"]["content"].split(" ")[0] for m in w.accepted()]
    assert got == ["第0段", "第1段", "第2段", "第3段"]


def test_state_is_per_robot_and_hides_the_key(tmp_path, wecom):
    w1, w2 = wecom(limit=2, window=30.0), wecom(limit=2, window=30.0)
    args = ["--rate", "2/30", "--max-wait", "0"]
    text = "【巡查提醒】测试"
    for w in (w1, w1, w2, w2):
        rc, out, err = run(tmp_path, w.url, text, args, kind="overdue",
                           doc=json.dumps({"text": text}))
        assert rc == 0, err
    # A third message to the first robot within its window would be a 45009.
    rc, out, err = run(tmp_path, w1.url, text, args, kind="overdue",
                       doc=json.dumps({"text": text}))
    assert rc == 1 and "--max-wait" in err
    assert w1.codes() == [0, 0] and w2.codes() == [0, 0]
    state = tmp_path / "state"
    names = sorted(os.listdir(state))
    assert len(names) == 4  # a .json and a .lock per robot
    for name in names:
        assert KEY not in name
        assert KEY not in (state / name).read_text()


def test_held_lock_bounds_the_wait(tmp_path, wecom):
    w = wecom()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    h = hashlib.sha256(w.url.encode()).hexdigest()[:16]
    with open(state / f"wechat-bridge-{h}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        t0 = time.monotonic()
        rc, out, err = run(tmp_path, w.url, "测试", ["--max-wait", "1"], kind="overdue",
                           doc='{"text":"测试"}')
        took = time.monotonic() - t0
    assert rc == 1 and "held it for more than --max-wait 1 s" in err
    assert 1 <= took < 6
    assert w.log == []
    rc, out, err = run(tmp_path, w.url, "测试", ["--max-wait", "1"], kind="overdue",
                       doc='{"text":"测试"}')
    assert rc == 0, err


def test_bad_rate_is_usage_error(tmp_path, wecom):
    w = wecom()
    for bad in ("20", "0/60", "20/0", "x/60", "20/6s"):
        rc, out, err = run(tmp_path, w.url, "测试", ["--rate", bad], kind="overdue")
        assert rc == 2, bad
    assert w.log == []


def test_the_fake_enforces_the_limits(wecom):
    # The fake must be able to say no, or the tests above prove nothing.
    w = wecom(limit=2, window=30.0)

    def post(raw):
        req = urllib.request.Request(w.url, data=raw,
                                     headers={"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=10))["errcode"]

    def msg(kind, content):
        return json.dumps({"msgtype": kind, kind: {"content": content}}).encode()

    assert post(msg("text", "巡" * 683)) == 40058          # 2049 bytes
    assert post(msg("markdown", "巡" * 1366)) == 40058     # 4098 bytes
    assert post(b'{"msgtype":"text","text":{"content":"\xe5\xb7"}}') == 40033
    data = png()
    bad = {"msgtype": "image", "image": {"base64": base64.b64encode(data).decode(),
                                         "md5": hashlib.md5(b"other").hexdigest()}}
    assert post(json.dumps(bad).encode()) == 301019
    assert post(msg("text", "巡" * 682)) == 0              # 2046 bytes
    assert post(msg("markdown", "巡" * 1365)) == 0         # 4095 bytes
    assert post(msg("text", "third")) == 45009


def wait_for(cond, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def pieces(text, n, size=600):
    return "\n".join(f"第{i}段 " + text * size for i in range(n))


def firsts(w):
    return [m["text"]["content"].split(" ")[0] for m in w.accepted()]


def test_run_killed_by_the_daemon_is_not_repeated(tmp_path, wecom):
    # A slow robot, and the daemon's timeout: SIGKILL to the process group
    # while the third piece waits for its answer. The retry must post the
    # third to fifth pieces only: the first two were recorded as they went.
    w = wecom()
    w.delay, w.hold = 0.2, 2
    text = pieces("巡", 5)
    doc = json.dumps({"text": text})
    p = start(tmp_path, w.url, text, ["--no-chart"], kind="overdue", doc=doc, group=True)
    wait_for(lambda: len(w.arrived) >= 3, what="the third piece")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    p.stdout.close()
    p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    wait_for(lambda: len(w.log) == 3, what="the held request to end")
    assert firsts(w) == ["第0段", "第1段"]
    w.hold, w.delay = None, 0.0
    rc, out, err = run(tmp_path, w.url, text, ["--no-chart"], kind="overdue", doc=doc)
    assert rc == 0, err
    assert "2 of 5" in out
    assert firsts(w) == ["第0段", "第1段", "第2段", "第3段", "第4段"]
    # Done: a further try (the daemon's crash case) starts afresh, as before.
    state = json.loads(next((tmp_path / "state").glob("*.json")).read_text())
    assert state["partial"] == {}


def test_budget_bounds_a_slow_robot_and_the_retry_goes_on(tmp_path, wecom):
    # 0.5 s an answer, 8 pieces, --budget 3: the run stops in time on its
    # own (exit 1, not the daemon's kill) and the retry posts the rest.
    w = wecom()
    w.delay = 0.5
    text = pieces("巡", 8)
    doc = json.dumps({"text": text})
    t0 = time.monotonic()
    rc, out, err = run(tmp_path, w.url, text, ["--no-chart", "--budget", "3"],
                       kind="overdue", doc=doc)
    took = time.monotonic() - t0
    assert rc == 1
    assert "--budget 3 s" in err
    assert took < 3.5
    got = len(w.accepted())
    assert 1 <= got < 8 and None not in w.codes()
    w.delay = 0.0
    rc, out, err = run(tmp_path, w.url, text, ["--no-chart"], kind="overdue", doc=doc)
    assert rc == 0, err
    assert f"{got} of 8" in out
    assert firsts(w) == [f"第{i}段" for i in range(8)]


def test_budget_includes_the_chart(tmp_path, wecom):
    # A chart that never finishes gets half of what is left of the budget,
    # not --max-time: the text still goes out, and the run ends in time.
    w = wecom()
    stub = tmp_path / "gridpatrol-slow"
    stub.write_text("#!/bin/sh\nexec sleep 60\n")
    stub.chmod(0o755)
    t0 = time.monotonic()
    rc, out, err = run(tmp_path, w.url, "【今日巡查】2026-11-24：…",
                       ["--gridpatrol", str(stub), "--max-time", "10", "--budget", "4"])
    took = time.monotonic() - t0
    assert rc == 0, err
    assert "gridpatrol chart ran past" in out
    assert w.codes() == [0]
    assert took < 4


def test_chart_posted_before_a_kill_is_not_repeated(tmp_path, wecom):
    # Killed while the chart's request is held: the retry posts the chart
    # again (it never got in) and not the text.
    w = wecom()
    w.hold = 1
    stub = stub_gridpatrol(tmp_path)
    text = "【今日巡查】2026-11-24：5 个网格中 4 个已巡查。"
    p = start(tmp_path, w.url, text, ["--gridpatrol", stub], group=True)
    wait_for(lambda: len(w.arrived) >= 2, what="the chart's request")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    p.stdout.close()
    p.stderr.close()
    wait_for(lambda: len(w.log) == 2, what="the held request to end")
    w.hold = None
    rc, out, err = run(tmp_path, w.url, text, ["--gridpatrol", stub])
    assert rc == 0, err
    assert "1 of 1" in out
    assert [m["msgtype"] for m in w.accepted()] == ["text", "image"]


def test_bad_budget_is_usage_error(tmp_path, wecom):
    w = wecom()
    for bad in ("0", "", "x", "2.5", "-1"):
        rc, out, err = run(tmp_path, w.url, "测试", ["--budget", bad], kind="overdue")
        assert rc == 2, bad
    assert w.log == []


def robot_name(w, suffix):
    return "wechat-bridge-%s%s" % (hashlib.sha256(w.url.encode()).hexdigest()[:16], suffix)


def test_state_directory_is_made_private(tmp_path, wecom):
    w = wecom()
    rc, out, err = run(tmp_path, w.url, "测试", kind="overdue", doc='{"text":"测试"}')
    assert rc == 0, err
    st = os.lstat(tmp_path / "state")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    for name in os.listdir(tmp_path / "state"):
        assert stat.S_IMODE(os.lstat(tmp_path / "state" / name).st_mode) == 0o600


@pytest.mark.parametrize("case", ["group_writable", "world_writable", "other_owner",
                                  "symlink", "file"])
def test_unsafe_state_directory_is_refused(tmp_path, wecom, case):
    w = wecom()
    state = tmp_path / "state"
    if case == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        state.symlink_to(tmp_path / "real")
    elif case == "file":
        state.write_text("")
    else:
        state.mkdir()
        os.chmod(state, {"group_writable": 0o770, "world_writable": 0o702,
                         "other_owner": 0o700}[case])
        if case == "other_owner":
            if os.getuid() != 0:
                pytest.skip("needs root to give the directory to another user")
            os.chown(state, 65534, 65534)
    rc, out, err = run(tmp_path, w.url, "测试", kind="overdue", doc='{"text":"测试"}')
    assert rc == 2, out + err
    assert "state directory" in err
    if case.endswith("writable"):
        assert "writable by group or others" in err
    assert w.log == []


@pytest.mark.parametrize("where", [".json.tmp", ".json"])
@pytest.mark.parametrize("victim_exists", [True, False])
def test_symlink_in_the_state_directory_is_not_written_through(tmp_path, wecom, where,
                                                              victim_exists):
    # Planted before the run (only possible when the directory was shared):
    # the bridge must replace the link, never write what it points to.
    w = wecom()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    if victim_exists:
        victim.write_text("precious\n")
    link = state / robot_name(w, where)
    link.symlink_to(victim)
    rc, out, err = run(tmp_path, w.url, "测试", kind="overdue", doc='{"text":"测试"}')
    assert rc == 0, err
    assert w.codes() == [0]
    if victim_exists:
        assert victim.read_text() == "precious\n"
    else:
        assert not os.path.lexists(victim)
    path = state / robot_name(w, ".json")
    assert stat.S_ISREG(os.lstat(path).st_mode)
    assert json.loads(path.read_text())["sent"]
    assert not os.path.lexists(state / robot_name(w, ".json.tmp"))
