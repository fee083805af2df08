"""System tests for contrib/wechat-bridge against a fake WeCom endpoint.

The fake is Python's own http.server on a free loopback port, in a thread:
it records every request and answers as WeCom does ({"errcode":0,...}), or
with an error code, or with HTTP 500. The bridge runs as gridpatrold runs
it: the delivery JSON on stdin and GRIDPATROL_* in the environment.
"""
import http.server
import json
import os
import socket
import subprocess
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BRIDGE = os.path.join(HERE, "..", "..", "contrib", "wechat-bridge", "wechat-bridge")

TEXT = ("【巡查提醒】云华社区 1号网格（紫坪铺库岸）已 4小时12分 未巡查，上次 w017 09:12。\n"
        "请 w017、w021 尽快巡查。 \"引号\" \\ 反斜杠")
KEY = "test-key-693a91f6"


class FakeWeCom(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []
        self.status = 200
        self.reply = {"errcode": 0, "errmsg": "ok"}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_port}/cgi-bin/webhook/send?key={KEY}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.server.requests.append({
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "body": body,
        })
        data = json.dumps(self.server.reply).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    # The bridge keeps per-robot send times; each test its own directory.
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def wecom():
    srv = FakeWeCom()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def delivery(text=TEXT, did="wechat-000123"):
    return json.dumps({
        "delivery_id": did, "sink": "wechat", "text": text,
        "alerts": [{"alert_id": 123, "kind": "overdue", "cell": "yh-01", "text": text}],
    }, ensure_ascii=False)


def run(args=(), env_extra=None, text=TEXT, stdin=None, timeout=30):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GRIDPATROL_", "WECHAT_", "CREDENTIALS_DIRECTORY"))}
    if text is not None:
        env["GRIDPATROL_TEXT"] = text
    env["GRIDPATROL_DELIVERY_ID"] = "wechat-000123"
    env["GRIDPATROL_KIND"] = "overdue"
    env.update(env_extra or {})
    doc = delivery(text if text is not None else TEXT) if stdin is None else stdin
    return subprocess.run([BRIDGE, "--group", "yunhua", *args], input=doc.encode("utf-8"),
                          env=env, capture_output=True, timeout=timeout)


def posted(req):
    return json.loads(req["body"].decode("utf-8"))


def test_posts_text_intact(wecom):
    r = run(env_extra={"WECHAT_WEBHOOK_URL": wecom.url})
    assert r.returncode == 0, r.stderr.decode()
    assert len(wecom.requests) == 1
    req = wecom.requests[0]
    assert req["path"] == f"/cgi-bin/webhook/send?key={KEY}"
    assert req["content_type"] == "application/json"
    assert posted(req) == {"msgtype": "text", "text": {"content": TEXT}}
    assert b"yunhua" in r.stdout and b"wechat-000123" in r.stdout


def test_webhook_file_and_text_from_stdin(wecom, tmp_path):
    f = tmp_path / "webhook"
    f.write_text("\n  " + wecom.url + "  \n")
    f.chmod(0o600)
    # No GRIDPATROL_TEXT: the document's "text" is used.
    r = run(["--webhook-file", str(f)], text=None)
    assert r.returncode == 0, r.stderr.decode()
    assert posted(wecom.requests[0])["text"]["content"] == TEXT


def test_systemd_credential(wecom, tmp_path):
    (tmp_path / "wechat-webhook").write_text(wecom.url + "\n")
    r = run(env_extra={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert r.returncode == 0, r.stderr.decode()
    assert len(wecom.requests) == 1


def test_errcode_is_failure(wecom):
    wecom.reply = {"errcode": 93000, "errmsg": "invalid webhook url"}
    r = run(env_extra={"WECHAT_WEBHOOK_URL": wecom.url})
    assert r.returncode != 0
    assert b"93000" in r.stderr
    assert len(wecom.requests) == 1


def test_http_500_is_failure(wecom):
    wecom.status = 500
    r = run(env_extra={"WECHAT_WEBHOOK_URL": wecom.url})
    assert r.returncode != 0
    assert b"HTTP request failed" in r.stderr


def test_unreachable_is_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    r = run(["--max-time", "5"],
            env_extra={"WECHAT_WEBHOOK_URL": f"http://127.0.0.1:{port}/send?key={KEY}"})
    assert r.returncode != 0
    assert b"HTTP request failed" in r.stderr


def test_no_webhook_is_failure():
    r = run()
    assert r.returncode == 2
    assert b"no webhook URL" in r.stderr


def test_long_text_split_on_lines(wecom):
    lines = [f"网格 yh-{i:03d} 已 4小时 未巡查，请尽快巡查。" for i in range(200)]
    text = "\n".join(lines)
    r = run(env_extra={"WECHAT_WEBHOOK_URL": wecom.url}, text=text)
    assert r.returncode == 0, r.stderr.decode()
    assert len(wecom.requests) > 1
    parts = [posted(q)["text"]["content"] for q in wecom.requests]
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == text


def test_dry_run_sends_nothing_and_hides_key(wecom):
    r = run(["--dry-run"], env_extra={"WECHAT_WEBHOOK_URL": wecom.url})
    assert r.returncode == 0, r.stderr.decode()
    assert wecom.requests == []
    out = r.stdout.decode()
    assert KEY not in out
    body = json.loads(out.splitlines()[1])
    assert body == {"msgtype": "text", "text": {"content": TEXT}}


def test_key_not_in_arguments(wecom, tmp_path):
    # A stand-in curl records its argv; the key must reach it on stdin.
    fake = tmp_path / "curl"
    fake.write_text("#!/bin/sh\n"
                    "printf '%s\\n' \"$@\" > \"$ARGV_OUT\"\n"
                    "cat > \"$ARGV_OUT.stdin\"\n"
                    "prev=\n"
                    "for a; do\n"
                    "  [ \"$prev\" = --output ] && printf '{\"errcode\":0}' > \"$a\"\n"
                    "  prev=$a\n"
                    "done\n"
                    "exit 0\n")
    fake.chmod(0o755)
    out = tmp_path / "argv"
    r = run(env_extra={"WECHAT_WEBHOOK_URL": wecom.url,
                       "PATH": f"{tmp_path}:{os.environ['PATH']}",
                       "ARGV_OUT": str(out)})
    assert r.returncode == 0, r.stderr.decode()
    assert KEY not in out.read_text()
    assert KEY in (tmp_path / "argv.stdin").read_text()


# Each would end the quoted url in curl's config (newline, CR), cut it
# (NUL) or is no part of a URL; after the newline, curl would read options.
BAD = ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", " "]


@pytest.mark.parametrize("bad", BAD, ids=[hex(ord(c)) for c in BAD])
@pytest.mark.parametrize("source", ["env", "file", "credential"])
def test_control_character_in_url_is_refused(wecom, tmp_path, source, bad):
    url = wecom.url + bad + "output = " + str(tmp_path / "written")
    if source == "env":
        if bad == "\x00":
            pytest.skip("an environment variable cannot hold a NUL")
        r = run(env_extra={"WECHAT_WEBHOOK_URL": url})
    else:
        f = tmp_path / "wechat-webhook"
        f.write_bytes(url.encode() + b"\n")
        if source == "file":
            r = run(["--webhook-file", str(f)])
        else:
            r = run(env_extra={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert not (tmp_path / "written").exists()
    if source != "env" and bad == "\n":
        # A file's URL is its first non-blank line: the next one is not read.
        assert r.returncode == 0, r.stderr.decode()
        assert [q["path"] for q in wecom.requests] == [f"/cgi-bin/webhook/send?key={KEY}"]
        return
    assert r.returncode == 2, r.stderr.decode()
    assert b"control character" in r.stderr
    assert wecom.requests == []


def test_url_file_with_crlf_line_end_still_works(wecom, tmp_path):
    # A CR at the end of the line (a file saved on Windows) is trimmed as
    # white space; only one inside the URL is refused.
    f = tmp_path / "webhook"
    f.write_bytes(b"\r\n" + wecom.url.encode() + b"\r\n")
    r = run(["--webhook-file", str(f)])
    assert r.returncode == 0, r.stderr.decode()
    assert len(wecom.requests) == 1


@pytest.mark.parametrize("bad,why", [("\nverbose", b"control character"),
                                     ('"', b"quote or backslash"),
                                     ("\\", b"quote or backslash")])
def test_bad_url_refused_in_a_dry_run_too(wecom, bad, why):
    r = run(["--dry-run"], env_extra={"WECHAT_WEBHOOK_URL": wecom.url + bad})
    assert r.returncode == 2
    assert why in r.stderr
    assert r.stdout == b""
