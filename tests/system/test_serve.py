"""`gridpatrol serve` end to end: a real broker and gridpatrold fill a
database with the daily-report fixture of test_cli.py, then the real CLI
serves it over HTTP on a free port. Pages are compared with what the same
commands print on the command line; bad requests, slow clients, the token
and a headless Chromium are tried against the running server.
"""
import http.client
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import free_port, wait_for
from test_cli import CHROMIUM, EVENTS, REPORT_CELLS, build_fixture_day, cli, cli_json

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


class Server:
    """A running `gridpatrol serve`; stderr goes to a log file."""

    def __init__(self, d, tmp, *args, host="127.0.0.1", db=None):
        self.host = host
        self.port = free_port()
        self.log = os.path.join(str(tmp), f"serve-{self.port}.log")
        self.logf = open(self.log, "wb")
        cmd = [GRIDPATROL, "-c", d.conf] + (["--db", db] if db else []) + \
            ["serve", "--listen", f"{host}:{self.port}"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf)

    def wait_ready(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(up, 20, "gridpatrol serve to listen")
        return self

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def request(self, method, path, headers=None, body=None, timeout=20):
        con = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            con.request(method, path, body=body, headers=headers or {})
            r = con.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            con.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, data, timeout=10, source=None):
        """Send bytes as they are; returns the status line's code and all."""
        s = socket.create_connection((self.host, self.port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        try:
            s.sendall(data)
            got = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
                if b"\r\n\r\n" in got and b"Connection: close" not in data and \
                        b"content-length: 0" in got.lower():
                    break
            code = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.") else None
            return code, got
        finally:
            s.close()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.logf.close()
        return self.proc.returncode


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


def serve(servers, d, tmp, *args, **kw):
    s = Server(d, tmp, *args, **kw)
    servers.append(s)
    return s.wait_ready()


def check_security_headers(h):
    for k, v in SECURITY_HEADERS.items():
        assert k in h and v in h[k], (k, h)


# --------------------------------------------------------------------------
# Pages: every route, and the same documents as the commands
# --------------------------------------------------------------------------

def test_routes_serve_what_the_commands_print(make_daemon, broker, tmp_path, servers):
    d, D = build_fixture_day(make_daemon, broker)
    s = serve(servers, d, tmp_path)
    day = D.isoformat()

    routes = {
        "/": HTML_TYPE, f"/report?date={day}": HTML_TYPE, "/report": HTML_TYPE,
        "/alerts": HTML_TYPE, "/alerts?since=yesterday&pending=1": HTML_TYPE,
        f"/workers?date={day}": HTML_TYPE, f"/workers?from={day}&to=today": HTML_TYPE,
        "/api/status": JSON_TYPE, f"/api/report?date={day}": JSON_TYPE,
        "/api/report?date=yesterday": JSON_TYPE, "/api/alerts": JSON_TYPE,
        f"/api/alerts?since={day}&pending=0": JSON_TYPE, "/api/workers": JSON_TYPE,
        f"/api/workers?from={day}&to={day}": JSON_TYPE,
    }
    for path, ctype in routes.items():
        code, h, body = s.get(path)
        assert code == 200, (path, code, body)
        assert h["content-type"] == ctype, (path, h)
        check_security_headers(h)
        assert int(h["content-length"]) == len(body) > 0
        if ctype == JSON_TYPE:
            json.loads(body)
        else:
            # Every page is a served page: an HTML document with the site's
            # navigation, never the JSON listing.
            text = body.decode()
            assert text.startswith("<!DOCTYPE html>"), (path, text[:80])
            assert '<nav class="top">' in text, path
    # The now page refreshes itself; the CLI's file does not.
    now_page = s.get("/")[2].decode()
    assert '<meta http-equiv="refresh" content="60">' in now_page
    assert "yh-01" in now_page and 'class="st st-' in now_page
    assert 'http-equiv="refresh"' not in cli(d, "status", "--format", "html").stdout.decode()

    # The same documents as the CLI prints for the same database. status
    # depends on the clock only at state changes: it must equal the CLI's
    # taken just before or just after.
    before = cli_json(d, "status")
    code, _, body = s.get("/api/status")
    after = cli_json(d, "status")
    assert json.loads(body) in (before, after)
    assert before["cells"] and [c["id"] for c in before["cells"]] == \
        ["yh-01", "yh-02", "yh-03", "yh-04"]

    code, _, body = s.get(f"/api/report?date={day}")
    assert json.loads(body) == cli_json(d, "report", "--date", day)
    assert json.loads(body)["cells"][0]["covered_pct"] == 55.6

    code, _, body = s.get(f"/api/alerts?since={day}")
    assert json.loads(body) == cli_json(d, "alerts", "--since", day)
    code, _, body = s.get(f"/api/alerts?since={day}&pending=1")
    assert json.loads(body) == cli_json(d, "alerts", "--since", day, "--pending")
    code, _, body = s.get(f"/api/workers?date={day}")
    want = cli_json(d, "workers", "--date", day)
    assert json.loads(body) == want
    assert {w["worker"] for w in want["workers"]} >= {"w017", "w021", "w040"}
    code, _, body = s.get(f"/api/workers?from={day}&to=today")
    assert json.loads(body) == cli_json(d, "workers", "--from", day, "--to", "today")

    # The report page is the command's printable HTML.
    code, h, body = s.get(f"/report?date={day}")
    page = cli(d, "report", "--date", day, "--format", "html").stdout
    html = body.decode()
    assert "<svg" in html and "55.6" in html and "云华社区 1号网格" in html
    assert "河堤 &lt;3号&gt; &amp;" in html and "<3号>" not in html
    # Served, the page gains the navigation bars (the site's and the
    # days'); without them it is the command's page, identical but for the
    # "generated at" stamp (a minute may turn).
    served = re.sub(r'<nav class="(top|days)">.*?</nav>\n', "", html, flags=re.S)
    assert '<nav class="top">' in html and 'href="/report?date=' in html
    assert '<nav class="top">' not in page.decode()
    assert len(served.encode()) == len(page)

    # HEAD: the headers of GET, no body.
    code, h, body = s.request("HEAD", "/api/status")
    assert code == 200 and body == b"" and h["content-type"] == JSON_TYPE

    # One access line per request: method, path without query, status.
    # (written when the connection has finished with the request)
    wait_for(lambda: "HEAD /api/status 200 0 " in s.log_text(), 10, "the HEAD's log line")
    log = s.log_text()
    assert "GET /api/report 200 1" in log
    assert "date=" not in log
    assert s.stop() == 0
    assert "stopped" in s.log_text()
    assert d.stop() == 0


def test_database_error_is_500_and_server_carries_on(make_daemon, broker, tmp_path,
                                                     servers):
    d = make_daemon(cells=REPORT_CELLS, events=EVENTS)  # never started: no file
    s = serve(servers, d, tmp_path, db=str(tmp_path / "missing.db"))
    code, h, body = s.get("/api/status")
    assert code == 500 and b"missing.db" not in body
    check_security_headers(h)
    assert "no database at" in s.log_text()
    code, _, _ = s.get("/api/report")
    assert code == 500
    assert s.proc.poll() is None
    assert s.stop() == 0


# --------------------------------------------------------------------------
# Bad requests: 4xx, never a crash
# --------------------------------------------------------------------------

def test_bad_requests_get_4xx(make_daemon, broker, tmp_path, servers):
    d, D = build_fixture_day(make_daemon, broker)
    s = serve(servers, d, tmp_path)

    for m in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        code, h, _ = s.request(m, "/api/status", body=b"" if m != "POST" else b"x=1")
        assert code == 405, m
        assert h["allow"] == "GET, HEAD"
        check_security_headers(h)

    for path in ("/nope", "/report/", "/api", "/api/", "/favicon.ico", "/../etc/passwd",
                 "/%2e%2e/etc/passwd", "/%2e%2e%2fetc%2fpasswd", "/report%00",
                 "/./report", "//report", "/REPORT", "/api/status.json"):
        code, h, _ = s.get(path)
        assert code == 404, path
        check_security_headers(h)
    # An absolute-form or asterisk target is not a page either.
    code, _ = s.raw(b"GET http://x/../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
    assert code in (400, 404), code

    bad = ["date=../../x", "date=..%2f..%2fx", "date=0000-00-00", "date=99999-01-01",
           "date=2026-02-30", "date=1999-12-31", "date=2101-01-01", "date=2026-13-01",
           "date=2026-1-01", "date=", "date", "date=%00", "date=2026-01-01%00",
           "date=2026-01-01x", "date=today%20", "date=tomorrow", "date=+1d",
           "date=" + "9" * 200, "date=2026-01-01&date=2026-01-02", "dat=2026-01-01",
           "date=2026-01-01&x=1"]
    for q in bad:
        code, h, _ = s.get("/api/report?" + q)
        assert code == 400, q
        check_security_headers(h)
    for q in ("from=2026-01-01", "to=2026-01-01", "from=2026-02-01&to=2026-01-01",
              "from=2024-01-01&to=2025-12-31", "date=today&from=today&to=today",
              "from=2000-01-01&to=2100-12-31"):
        code, _, _ = s.get("/api/workers?" + q)
        assert code == 400, q
    code, _, _ = s.get("/api/workers?from=2025-01-01&to=2026-01-01")  # 366 days
    assert code == 200
    for q in ("pending=yes", "pending=2", "since=../x", "since=2026-02-29"):
        code, _, _ = s.get("/api/alerts?" + q)
        assert code == 400, q
    code, _, _ = s.get("/api/status?date=today")
    assert code == 400
    # The bounds themselves are days the pages take.
    for day in ("2000-01-01", "2100-12-31", "2024-02-29"):
        code, _, _ = s.get(f"/api/report?date={day}")
        assert code == 200, day

    # Too long a URL or any body: 413.
    code, h, _ = s.get("/api/report?date=" + "1" * 3000)
    assert code == 413
    check_security_headers(h)
    code, _, _ = s.get("/" + "a" * 2100)
    assert code == 413
    code, _, _ = s.request("GET", "/api/status", body=b"hello",
                           headers={"Content-Length": "5"})
    assert code == 413
    code, _ = s.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert code == 413
    # Past the per-connection memory, libmicrohttpd answers itself.
    code, _ = s.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"j" * 40000 +
                    b"\r\nConnection: close\r\n\r\n")
    assert code == 431, code
    code, _ = s.raw(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert code == 414, code
    # Garbage instead of HTTP.
    s.raw(b"\x00\xff\r\n\r\nnot http at all\r\n\r\n", timeout=5)

    # Still serving after all of it.
    code, _, _ = s.get("/api/status")
    assert code == 200
    assert s.proc.poll() is None
    assert s.stop() == 0


# --------------------------------------------------------------------------
# Slow clients cannot hold the server
# --------------------------------------------------------------------------

def test_slow_clients_do_not_hold_the_server(make_daemon, broker, tmp_path, servers):
    d = make_daemon(cells=REPORT_CELLS, events=EVENTS).start()
    timeout = 2
    s = serve(servers, d, tmp_path, "--timeout", str(timeout))

    # More connections from one address than it may hold (8), each having
    # sent half a request line; four keep trickling a byte at a time.
    slow = []
    for i in range(12):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"GET /api/st")
        slow.append(c)
    trickle = slow[:4]
    t0 = time.monotonic()
    # A well-behaved client from another address is answered at once.
    code, got = s.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      source="127.0.0.7")
    answered = time.monotonic() - t0
    print(f"\nwell-behaved client answered in {answered * 1000:.0f} ms beside 12 slow ones")
    assert code == 200 and b'"cells"' in got
    assert answered < timeout

    # The idle ones are dropped after the timeout; the tricklers keep
    # theirs only while they trickle (the timeout counts idle time).
    idle = slow[4:]

    def closed(c):
        c.settimeout(0.05)
        try:
            return c.recv(1024) == b""
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    deadline = time.monotonic() + timeout + 5
    while not all(closed(c) for c in idle):
        assert time.monotonic() < deadline, "idle connections not dropped"
        for c in trickle:
            c.sendall(b"a")
        time.sleep(0.3)  # the trickle's pace, not a wait for a condition
    dropped = time.monotonic() - t0
    print(f"idle connections dropped after {dropped:.1f} s (timeout {timeout} s)")
    assert dropped >= timeout - 0.5
    for _ in range(int(timeout / 0.3) + 2):  # trickle past another timeout
        for c in trickle:
            c.sendall(b"a")
        time.sleep(0.3)
    assert not any(closed(c) for c in trickle), "a trickling client was dropped"
    wait_for(lambda: all(closed(c) for c in trickle), timeout + 5, "tricklers dropped")
    for c in slow:
        c.close()

    # The address's slots are free again.
    code, _, _ = s.get("/api/status")
    assert code == 200

    # Past the overall limit (32) from five addresses: libmicrohttpd stops
    # accepting, so a new client waits in the kernel's queue while they
    # hold every slot, and is answered once the timeout has dropped them.
    crowd = []
    for a in range(10, 15):
        for i in range(8):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10,
                                         source_address=(f"127.0.0.{a}", 0))
            c.sendall(b"GET /")
            crowd.append(c)
    t0 = time.monotonic()
    code, _ = s.raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    timeout=timeout + 10, source="127.0.0.30")
    waited = time.monotonic() - t0
    print(f"with 40 idle connections from 5 addresses a new client was answered after "
          f"{waited:.1f} s")
    assert code == 200
    assert timeout - 0.5 <= waited <= timeout + 3, waited
    for c in crowd:
        c.close()
    assert s.proc.poll() is None
    assert s.stop() == 0
    assert d.stop() == 0


# --------------------------------------------------------------------------
# The token on any address but loopback
# --------------------------------------------------------------------------

def test_token_required_off_loopback(make_daemon, broker, tmp_path, servers):
    d, D = build_fixture_day(make_daemon, broker)
    token = "Kq3-x_9~Zr.0aB7cD4eF6gH8iJ1kL2mN"
    tf = tmp_path / "token"
    tf.write_text(token + "\n")
    os.chmod(tf, 0o600)

    # No token file, an empty one, a bad one: refused, exit 2, one line.
    for args in ([], ["--token-file", str(tmp_path / "absent")]):
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "serve", "--listen",
                            f"127.0.0.2:{free_port()}"] + args,
                           capture_output=True, timeout=20)
        assert r.returncode == 2, r
        assert r.stderr.decode().count("\n") == 1
    assert b"needs --token-file" in subprocess.run(
        [GRIDPATROL, "-c", d.conf, "serve", "--listen", f"0.0.0.0:{free_port()}"],
        capture_output=True, timeout=20).stderr
    for content in ("", "\n", "has space\n", "a;b\n"):
        bad = tmp_path / "bad-token"
        bad.write_text(content)
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "serve", "--listen",
                            f"127.0.0.2:{free_port()}", "--token-file", str(bad)],
                           capture_output=True, timeout=20)
        assert r.returncode == 2 and b"token file" in r.stderr, (content, r)
    for listen in ("127.0.0.1", "localhost:80", "127.0.0.1:0", "127.0.0.1:99999", "[::1]"):
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "serve", "--listen", listen],
                           capture_output=True, timeout=20)
        assert r.returncode == 2 and b"bad --listen" in r.stderr, listen

    # A world-readable token file works but is warned about.
    wr = tmp_path / "token-wr"
    wr.write_text(token)
    os.chmod(wr, 0o644)
    w = serve(servers, d, tmp_path, "--token-file", str(wr), host="127.0.0.2")
    assert "readable by every user" in w.log_text()
    assert w.stop() == 0

    s = serve(servers, d, tmp_path, "--token-file", str(tf), host="127.0.0.2")
    assert "readable by every user" not in s.log_text()
    day = D.isoformat()

    code, h, _ = s.get("/api/status")
    assert code == 401 and h["www-authenticate"].startswith("Bearer")
    check_security_headers(h)
    # Unknown pages and bad dates are 401 too: nothing shows without it.
    assert s.get("/nope")[0] == 401
    assert s.get("/api/report?date=0000-00-00")[0] == 401
    assert s.get("/api/status", headers={"Authorization": "Bearer " + token[:-1]})[0] == 401
    assert s.get("/api/status", headers={"Authorization": "Bearer " + token + "x"})[0] == 401
    assert s.get("/api/status", headers={"Authorization": "Basic " + token})[0] == 401
    assert s.get("/api/status", headers={"Authorization": "Bearer"})[0] == 401
    assert s.get("/api/status?token=wrong")[0] == 401
    assert s.get("/api/status", headers={"Cookie": "gridpatrol_token=wrong"})[0] == 401

    code, h, body = s.get("/api/status", headers={"Authorization": "Bearer " + token})
    assert code == 200 and h["content-type"] == JSON_TYPE and b'"cells"' in body
    code, _, body = s.get(f"/api/report?date={day}",
                          headers={"authorization": "bearer   " + token})
    assert code == 200 and json.loads(body) == cli_json(d, "report", "--date", day)

    # The cookie flow: ?token= sets it and sends the browser on without it.
    code, h, _ = s.get(f"/?token={token}")
    assert code == 303 and h["location"] == "/"
    cookie = h["set-cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie, cookie
    assert cookie.startswith(f"gridpatrol_token={token};")
    code, h, _ = s.get(f"/report?date={day}&token={token}")
    assert code == 303 and h["location"] == f"/report?date={day}"
    code, h, _ = s.get(f"/report?token={token}&date=0000-00-00")
    assert code == 400
    code, h, body = s.get(f"/report?date={day}",
                          headers={"Cookie": f"other=1; gridpatrol_token={token}"})
    assert code == 200 and h["content-type"] == HTML_TYPE and b"55.6" in body

    wait_for(lambda: "GET /report 200 " in s.log_text(), 10, "the last log line")
    log = s.log_text()
    assert token not in log and token[:8] not in log
    assert "GET /api/status 401 " in log and "GET /report 303 " in log
    assert s.stop() == 0
    assert d.stop() == 0


def test_signals(make_daemon, broker, tmp_path, servers):
    d = make_daemon(cells=REPORT_CELLS, events=EVENTS).start()
    s = serve(servers, d, tmp_path)
    s.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP ignored" in s.log_text(), 10, "SIGHUP noticed")
    assert s.get("/api/status")[0] == 200
    assert s.stop(signal.SIGINT) == 0
    s2 = serve(servers, d, tmp_path)
    t0 = time.monotonic()
    assert s2.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    # Another program on the port: exit 1, one line.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([GRIDPATROL, "-c", d.conf, "serve", "--listen",
                            f"127.0.0.1:{port}"], capture_output=True, timeout=20)
        assert r.returncode == 1 and b"cannot listen" in r.stderr, r
    assert d.stop() == 0


# --------------------------------------------------------------------------
# A phone's browser through the server
# --------------------------------------------------------------------------

def artifacts_dir(tmp_path):
    d = os.environ.get("GRIDPATROL_ARTIFACTS")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(GRIDPATROL)), "meson-logs")
    if not os.path.isdir(d):
        d = str(tmp_path)
    return d


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_report_page_in_chromium(make_daemon, broker, tmp_path, servers):
    d, D = build_fixture_day(make_daemon, broker)
    s = serve(servers, d, tmp_path)
    url = f"http://127.0.0.1:{s.port}/report?date={D.isoformat()}"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--window-size=390,844"]

    profile = tmp_path / "chromium-dom"
    r = subprocess.run(base + [f"--user-data-dir={profile}", "--dump-dom", url],
                       capture_output=True, timeout=120)
    dom = r.stdout.decode("utf-8", "replace")
    assert "云华社区 1号网格（紫坪铺库岸）" in dom, r.stderr.decode(errors="replace")[-2000:]
    for figure in ("55.6", "27.1", "100.0", "w017", "Hamlet 4", "<svg"):
        assert figure in dom, figure

    shot = os.path.join(artifacts_dir(tmp_path), f"serve-report-{os.getpid()}.png")
    profile = tmp_path / "chromium-shot"
    r = subprocess.run(base + [f"--user-data-dir={profile}", f"--screenshot={shot}", url],
                       capture_output=True, timeout=120)
    assert os.path.exists(shot), r.stderr.decode(errors="replace")[-2000:]
    size = os.path.getsize(shot)
    print(f"\nserved report screenshot (390x844): {shot}, {size} bytes")
    assert size > 10 * 1024
    shutil.rmtree(tmp_path / "chromium-dom", ignore_errors=True)
    shutil.rmtree(profile, ignore_errors=True)
    # Both of Chromium's loads are in the access log, and nothing else was
    # served (the page is self-contained: no scripts, styles or images;
    # a favicon request, if any, is a 404).
    wait_for(lambda: s.log_text().count("GET /report 200 ") == 2, 10, "both page loads logged")
    assert s.log_text().count(" 200 ") == 2
    assert s.stop() == 0
    assert d.stop() == 0
