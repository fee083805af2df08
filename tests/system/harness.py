"""Test harness for gridpatrol system tests.

Every test gets its own temporary directory, its own free loopback port and
its own real `mosquitto`; the real `gridpatrold` runs against a real SQLite
file there. Nothing sleeps blindly: `wait_for` polls a condition with a bound.
"""
import json
import os
import pwd
import signal
import socket
import sqlite3
import struct
import subprocess
import time
import zlib

GRIDPATROLD = os.environ.get("GRIDPATROLD", "gridpatrold")
GRIDPATROL_SIM = os.environ.get("GRIDPATROL_SIM", "gridpatrol-sim")
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=30.0, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    def __init__(self, tmp, port=None, listener_extra="", anonymous=True):
        self.dir = tmp
        self.port = port or free_port()
        self.conf = os.path.join(tmp, "mosquitto.conf")
        self.log = os.path.join(tmp, "mosquitto.log")
        with open(self.conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\n"
                + listener_extra +
                f"allow_anonymous {'true' if anonymous else 'false'}\n"
                # Started as root, mosquitto drops to user "mosquitto", which
                # cannot read this test's private files (passwords, keys).
                f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
                "persistence false\n"
                # The daemon is offline in some tests; keep all it misses.
                "max_queued_messages 1000000\n"
                "max_inflight_messages 100\n"
                "log_dest stderr\n"
            )
        self.proc = None

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None,
                 10, "mosquitto to listen")
        assert self.proc.poll() is None, open(self.log).read()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


DEFAULT_EVENTS = """\
events:
  checkin: { label: "巡查签到" }
  litter: { label: "白色垃圾" }
  fishing: { label: "水库钓鱼", alert: immediate }
  flood: { label: "防汛水位", value: { unit: cm, warn: 250, alarm: 300 } }
"""


def cells_yaml(ids):
    if isinstance(ids, str):
        return ids  # a ready "cells:" block
    out = ["cells:"]
    for c in ids:
        out.append(f"  - id: {c}")
    return "\n".join(out) + "\n"


class Daemon:
    """A real gridpatrold on a temporary database."""

    def __init__(self, tmp, broker, cells=("yh-01", "yh-02"), extra="", client_id=None,
                 db=None, events=DEFAULT_EVENTS, storage_extra="", mqtt_extra=""):
        self.dir = tmp
        self.broker = broker
        self.db = db or os.path.join(tmp, "patrol.db")
        self.conf = os.path.join(tmp, "gridpatrol.yaml")
        self.log = os.path.join(tmp, "gridpatrold.log")
        self.client_id = client_id or f"gp-test-{os.getpid()}-{broker.port}"
        self.mqtt_extra = mqtt_extra
        self.write_config(cells, extra, events, storage_extra)
        self.proc = None

    def write_config(self, cells, extra="", events=DEFAULT_EVENTS, storage_extra=""):
        with open(self.conf, "w") as f:
            f.write(
                "mqtt:\n"
                "  host: 127.0.0.1\n"
                f"  port: {self.broker.port}\n"
                f"  client_id: {self.client_id}\n"
                f"{self.mqtt_extra}"
                "storage:\n"
                f"  path: {self.db}\n"
                f"{storage_extra}"
                "timezone: Asia/Shanghai\n"
                + cells_yaml(cells) + events + extra)

    def start(self, wait_connected=True):
        self.logf = open(self.log, "ab")
        self.log_offset = os.path.getsize(self.log)
        self.proc = subprocess.Popen([GRIDPATROLD, "-c", self.conf, "-v"],
                                     stdout=self.logf, stderr=self.logf)
        if wait_connected:
            self.wait_log("subscribed to", 20)
        return self

    def log_text(self, since_start=True):
        with open(self.log, "rb") as f:
            if since_start:
                f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, timeout=20):
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError(f"gridpatrold exited {self.proc.returncode}:\n"
                                     + self.log_text())
            return needle in self.log_text()
        wait_for(seen, timeout, f"'{needle}' in the daemon log")

    def stop(self, timeout=20):
        """SIGTERM; returns the exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.logf.close()
        return rc

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.logf.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def query(self, sql, args=()):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def count(self, table="event", where="1", args=()):
        return self.query(f"SELECT count(*) FROM {table} WHERE {where}", args)[0][0]


def sim(broker, count, *args, check=True, timeout=600):
    cmd = [GRIDPATROL_SIM, "-p", str(broker.port), "--count", str(count)] + list(args)
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True)


def sim_start(broker, count, *args):
    cmd = [GRIDPATROL_SIM, "-p", str(broker.port), "--count", str(count)] + list(args)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def publish(broker, topic, payload, qos=1, args=()):
    """Publish one message with the real mosquitto_pub client. payload: bytes."""
    how = ["-n"] if payload == b"" else ["-s"]  # -s refuses empty input
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", str(qos), "-t", topic]
                   + how + list(args), input=payload, check=True, timeout=20)


def record_sink(name, directory, *mode, extra=""):
    """YAML for an exec sink running tests/system/record-sink into directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    argv = ", ".join(json.dumps(a) for a in [os.path.join(here, "record-sink"), directory, *mode])
    return f"    - name: {name}\n      exec: [{argv}]\n{extra}"


class Recorder:
    """Reads what record-sink wrote: one file per try, named <delivery_id>.tryN."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)

    def tries(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if ".try" in name and not name.endswith(".tmp"):
                with open(os.path.join(self.dir, name)) as f:
                    try:
                        doc = json.load(f)
                    except ValueError:
                        continue  # still being written
                out.append((name, doc, os.path.getmtime(os.path.join(self.dir, name))))
        return out

    def delivered(self):
        """Delivered documents, oldest first."""
        docs = []
        for name, doc, mtime in self.tries():
            if os.path.exists(os.path.join(self.dir, doc["delivery_id"] + ".delivered")):
                if not any(d["delivery_id"] == doc["delivery_id"] for d, _ in docs):
                    docs.append((doc, mtime))
        docs.sort(key=lambda x: x[1])
        return [d for d, _ in docs]

    def alerts(self, kind=None):
        out = []
        for doc in self.delivered():
            for a in doc["alerts"]:
                if kind is None or a["kind"] == kind:
                    out.append(a)
        return out

    def env(self, delivery_id, n=1):
        with open(os.path.join(self.dir, f"{delivery_id}.env{n}")) as f:
            return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


# --- PNG, read back by the chart and page tests ---

def png_header(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    n, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and n == 13
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return w, h, depth, ctype, interlace


def png_decode(data):
    """(width, height, rows) of an 8-bit RGB/RGBA PNG (what cairo and
    Chromium write): rows[y] is a bytes of RGB triples, alpha dropped. The
    standard library only, so that the tests need no imaging package."""
    w, h, depth, ctype, interlace = png_header(data)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    assert len(raw) == h * (stride + 1)
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f in (1, 3, 4):
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                if f == 1:
                    line[i] = (line[i] + a) & 255
                elif f == 3:
                    line[i] = (line[i] + (a + b) // 2) & 255
                else:
                    c = prev[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        else:
            assert f == 0, f
        prev = line
        rows.append(bytes(line) if bpp == 3 else
                    bytes(b for i, b in enumerate(line) if i % 4 != 3))
    return w, h, rows
