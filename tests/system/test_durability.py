"""storage.sync: an ack leaves only once its rows are on disk.

The daemon runs under `strace -f -yy`; a publisher sends a few thousand
QoS 1 messages. The trace is then read in order: every pwrite to the
database's `-wal` file makes the WAL dirty, a successful fsync/fdatasync
of that file makes clean what was written before the sync began, and a
PUBACK (MQTT packet type 0x40) in anything written to the broker socket
while the WAL is dirty is a violation: a power cut at that instant would
lose a message the broker has already deleted.

With `sync: full` there must be none; with `sync: normal` the same checker
must find some, which proves it can fail.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

from harness import GRIDPATROLD, Daemon, sim, wait_for

CELLS = [f"c{i:03d}" for i in range(50)]
N = 3000

# Not a skip: CI installs strace (scripts/deps), and a skipped proof is none.
assert shutil.which("strace"), "test_durability needs strace (scripts/deps installs it)"

# [pid N] name(args) = result | name(args <unfinished ...> | <... name resumed>rest = result
LINE = re.compile(r"^(?:\[pid\s+(?P<pid>\d+)\]\s+|(?P<pid2>\d+)\s+)?"
                  r"(?:<\.\.\. (?P<rname>\w+) resumed>(?P<rrest>.*)"
                  r"|(?P<name>\w+)\((?P<args>.*))$")
RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)")
FD = re.compile(r"^\d+<(.*?)>[,)]")
HEX = re.compile(r"^(?:\\x[0-9a-f]{2})+$")
WAL = re.compile(r"-wal$")
STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
SOCKET_SENDS = {"write", "writev", "send", "sendto", "sendmsg"}
WAL_WRITES = {"pwrite64", "pwrite", "write", "pwritev", "pwritev2", "writev"}
SYNCS = {"fsync", "fdatasync"}


def mqtt_packet_types(data, carry):
    """Packet types in one chunk of the socket's byte stream. carry is the
    parser state across writes: [bytes still to skip, partial header]."""
    types = []
    buf = carry[1] + data
    carry[1] = b""
    i = carry[0]
    carry[0] = 0
    while i < len(buf):
        # fixed header: type byte, then 1..4 bytes of remaining length
        j = i + 1
        length = 0
        shift = 0
        while True:
            if j >= len(buf):
                carry[1] = buf[i:]
                return types
            b = buf[j]
            length |= (b & 0x7F) << shift
            shift += 7
            j += 1
            if not b & 0x80:
                break
        types.append(buf[i] & 0xF0)
        i = j + length
    carry[0] = i - len(buf)
    return types


def check_trace(path, broker_port, mark=None):
    """(violations, pubacks, wal_writes, wal_syncs) of one strace -f -yy log.
    With mark (bytes), also (violations, pubacks) up to the daemon's log
    line (a write to fd 2) containing it, as .at_mark."""
    sock = re.compile(r"^TCP(?:v6)?:\[[^\]]*->(?:127\.0\.0\.1|\[::1\]):%d\]$" % broker_port)

    def fd_is(args, what):
        # -xx prints the fd's path in hex too (not a socket's -yy details)
        m = FD.match(args)
        if not m:
            return False
        text = m.group(1)
        if HEX.match(text):
            text = bytes.fromhex(text.replace("\\x", "")).decode("utf-8", "replace")
        return what.search(text) is not None
    write_seq = 0        # WAL writes completed so far
    synced_upto = 0      # every WAL write numbered <= this is on disk
    writing = {}         # pid -> True while a WAL write is unfinished
    syncing = {}         # pid -> write_seq when its sync began
    pending_send = {}    # pid -> bytes of an unfinished socket write
    carry = [0, b""]
    violations = pubacks = wal_writes = wal_syncs = 0
    at_mark = None

    def dirty():
        return write_seq > synced_upto or any(writing.values())

    def on_send(data):
        nonlocal violations, pubacks
        n = mqtt_packet_types(data, carry).count(0x40)
        if n:
            pubacks += n
            if dirty():
                violations += n

    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid = m.group("pid") or m.group("pid2") or "0"
            if m.group("rname"):
                name, rest = m.group("rname"), m.group("rrest")
                r = RESULT.search(rest)
                ok = r is not None and r.group(1) not in ("?",) and int(r.group(1)) >= 0
                if name in SYNCS and pid in syncing:
                    began = syncing.pop(pid)
                    if ok:
                        synced_upto = max(synced_upto, began)
                        wal_syncs += 1
                elif pid in writing and name in WAL_WRITES:
                    del writing[pid]
                    write_seq += 1
                    wal_writes += 1
                elif pid in pending_send and name in SOCKET_SENDS:
                    data = pending_send.pop(pid)
                    if ok:
                        on_send(data)
                continue
            name, args = m.group("name"), m.group("args")
            unfinished = args.endswith("<unfinished ...>")
            r = RESULT.search(args)
            ok = r is not None and r.group(1) != "?" and int(r.group(1)) >= 0
            if mark and at_mark is None and name == "write" and args.startswith("2<"):
                if mark in b"".join(bytes.fromhex(x.replace("\\x", ""))
                                    for x in STRING.findall(args)):
                    at_mark = (violations, pubacks)
            if name in SOCKET_SENDS and fd_is(args, sock):
                data = b"".join(bytes.fromhex(s.replace("\\x", "")) for s in STRING.findall(args))
                # What was sent is what the result says; strace shows the
                # whole buffer (-s is large), a short write sends a prefix.
                if unfinished:
                    pending_send[pid] = data
                elif ok:
                    on_send(data[:int(r.group(1))])
            elif name in WAL_WRITES and fd_is(args, WAL):
                if unfinished:
                    writing[pid] = True
                else:
                    write_seq += 1
                    wal_writes += 1
            elif name in SYNCS and fd_is(args, WAL):
                if unfinished:
                    syncing[pid] = write_seq
                elif ok:
                    synced_upto = max(synced_upto, write_seq)
                    wal_syncs += 1
    return TraceResult(violations, pubacks, wal_writes, wal_syncs, at_mark)


class TraceResult(tuple):
    def __new__(cls, violations, pubacks, wal_writes, wal_syncs, at_mark):
        r = super().__new__(cls, (violations, pubacks, wal_writes, wal_syncs))
        r.at_mark = at_mark
        return r


class TracedDaemon(Daemon):
    # For CI's sanitizer build: LeakSanitizer cannot run under ptrace (it
    # exits 1 at the end; leaks are other tests' business), and ASan wants
    # its runtime first in the preload list, which the shim is not.
    env = dict(os.environ, ASAN_OPTIONS=":".join(filter(None, [
        os.environ.get("ASAN_OPTIONS"), "detect_leaks=0", "verify_asan_link_order=0"])))

    def start(self, wait_connected=True):
        self.trace = os.path.join(self.dir, "strace.log")
        self.logf = open(self.log, "ab")
        self.log_offset = os.path.getsize(self.log)
        self.proc = subprocess.Popen(
            ["strace", "-f", "-yy", "-xx", "-s", "1000000", "-o", self.trace,
             "-e", "trace=write,writev,send,sendto,sendmsg,pwrite64,pwritev,pwritev2,"
                   "fsync,fdatasync",
             GRIDPATROLD, "-c", self.conf, "-v"],
            stdout=self.logf, stderr=self.logf, env=self.env)
        if wait_connected:
            self.wait_log("subscribed to", 60)
        return self

    def daemon_pid(self):
        """strace's child: signals to strace itself only detach it."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def stop(self, timeout=20):
        os.kill(self.daemon_pid(), signal.SIGTERM)
        rc = self.proc.wait(timeout)  # strace exits with its tracee's status
        self.logf.close()
        return rc

    def kill(self):
        try:
            os.kill(self.daemon_pid(), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass
        self.proc.kill()
        self.proc.wait(10)
        self.logf.close()


def run_traced(tmp_path, broker, sync, slow_fsync_ms=0):
    d = TracedDaemon(str(tmp_path), broker, cells=CELLS, storage_extra=f"  sync: {sync}\n")
    if slow_fsync_ms:
        # strace -E would also preload into strace itself; env= does not.
        d.env = dict(d.env, LD_PRELOAD=os.environ["GRIDPATROL_SLOWFSYNC"],
                     GRIDPATROL_SLOW_FSYNC_MS=str(slow_fsync_ms))
    d.start()
    try:
        if slow_fsync_ms:
            with open(f"/proc/{d.daemon_pid()}/maps") as f:
                assert "slowfsync.so" in f.read(), "the shim is not loaded"
        out = sim(broker, N, "--cells-n", str(len(CELLS)), "--id-prefix", f"dur-{sync}",
                  timeout=300)
        assert out.returncode == 0, out.stderr
        wait_for(lambda: d.count() >= N, 120, f"{N} rows")
        # The last batch's acks leave after its commit: wait until the
        # broker has nothing left in flight for us, i.e. the sim is done
        # (it waits for its own PUBACKs) and the daemon had a quiet pass.
        assert d.stop(60) == 0
    finally:
        if d.alive():
            d.kill()
    rows = d.count()
    log = d.log_text()
    res = check_trace(d.trace, broker.port)
    print(f"\nsync: {sync}: rows {rows}, pubacks {res[1]}, violations {res[0]}, "
          f"wal pwrites {res[2]}, wal syncs {res[3]}")
    return rows, res, log


@pytest.mark.parametrize("slow_fsync_ms", [0, 10])
def test_full_acks_only_synced_batches(tmp_path, broker, slow_fsync_ms):
    """Also with every fsync 10 ms long (the slowfsync shim, an SD card):
    batches grow, and each is synced before its acks."""
    rows, (violations, pubacks, wal_writes, wal_syncs), log = run_traced(
        tmp_path, broker, "full", slow_fsync_ms)
    assert rows == N
    assert pubacks >= N  # every message was acked, and the parser saw it
    assert wal_writes > 0 and wal_syncs > 0
    assert violations == 0
    # Paid per batch, not per message.
    assert wal_syncs < N / 2
    assert "not power-cut safe" not in log and "a power cut can lose" not in log


def test_normal_is_caught_by_the_same_checker(tmp_path, broker):
    rows, (violations, pubacks, wal_writes, wal_syncs), log = run_traced(tmp_path, broker, "normal")
    assert rows == N
    assert pubacks >= N
    assert violations > 0
    assert "a power cut can lose" in log


def test_sighup_switches_sync(tmp_path, broker):
    """A reload applies storage.sync to the running writer: full, then
    normal after SIGHUP (violations appear only after the reload's warning),
    as the same trace shows."""
    d = TracedDaemon(str(tmp_path), broker, cells=CELLS, storage_extra="  sync: full\n")
    d.start()
    try:
        half = N // 2
        assert sim(broker, half, "--cells-n", str(len(CELLS)), "--id-prefix", "hup-a").returncode == 0
        wait_for(lambda: d.count() >= half, 120, f"{half} rows")
        d.write_config(CELLS, storage_extra="  sync: normal\n")
        os.kill(d.daemon_pid(), signal.SIGHUP)
        d.wait_log("a power cut can lose", 30)
        d.wait_log("configuration reloaded", 30)
        assert sim(broker, half, "--cells-n", str(len(CELLS)), "--id-prefix", "hup-b").returncode == 0
        wait_for(lambda: d.count() >= 2 * half, 120, f"{2 * half} rows")
        assert d.stop(60) == 0
    finally:
        if d.alive():
            d.kill()
    res = check_trace(d.trace, broker.port, mark=b"storage.sync: normal")
    print(f"\nreload: before {res.at_mark}, all {tuple(res)}")
    assert res.at_mark is not None, "the reload's warning is not in the trace"
    before_violations, before_pubacks = res.at_mark
    assert before_pubacks >= half and before_violations == 0
    assert res[0] > 0  # after the reload into normal


def test_packet_parser_follows_the_stream():
    carry = [0, b""]
    # two PUBACKs, a PUBLISH split across writes, then a PUBACK
    pub = bytes([0x32, 5]) + b"\x00\x01t\x00\x07"
    chunks = [b"\x40\x02\x00\x01\x40\x02\x00\x02" + pub[:3], pub[3:], b"\x40\x02\x00\x03"]
    types = [t for c in chunks for t in mqtt_packet_types(c, carry)]
    assert types == [0x40, 0x40, 0x30, 0x40]
