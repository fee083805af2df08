"""storage.sync: an ack leaves only once its rows are on disk.

The daemon runs under `strace -f -yy`; a publisher sends a few thousand
QoS 1 messages. The trace is then replayed in order:

- every pwrite to the database's `-wal` file makes the WAL dirty; a
  successful fsync/fdatasync of that file makes clean what was written
  before the sync began, and counts one completed sync;
- every PUBLISH read from the broker socket is noted with the number of
  WAL syncs completed so far;
- a PUBACK (MQTT packet type 0x40) written to the broker socket (acks are
  gathered: every packet inside every write/send is looked at) is a
  violation if the WAL is dirty at that moment, or if no WAL sync has
  completed since its PUBLISH was read (its row cannot be on disk yet: the
  only syncs are a COMMIT's, and any COMMIT after the read includes the
  row). A power cut at that instant would lose a message the broker has
  already deleted.

With `sync: full` there must be none; with `sync: normal` the same checker
must find some, which proves it can fail.
"""
import os
import re
import shutil
import signal
import subprocess

import pytest

from harness import GRIDPATROLD, Daemon, sim, sim_start, wait_for

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
SOCKET_READS = {"read", "readv", "recv", "recvfrom", "recvmsg"}
WAL_WRITES = {"pwrite64", "pwrite", "write", "pwritev", "pwritev2", "writev"}
SYNCS = {"fsync", "fdatasync"}
# x86-64 and arm64 have no send/recv/pwrite system calls (libc maps them)
TRACED = ",".join(sorted((SOCKET_SENDS | SOCKET_READS | WAL_WRITES | SYNCS)
                         - {"send", "recv", "pwrite"}))


class MqttStream:
    """One direction of an MQTT connection, fed in the chunks the system
    calls moved; yields (first byte, body) per complete packet."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        i = 0
        while True:
            j, length, shift = i + 1, 0, 0
            while j < len(self.buf):
                b = self.buf[j]
                length |= (b & 0x7F) << shift
                shift += 7
                j += 1
                if not b & 0x80:
                    break
            else:
                break  # header incomplete
            if j + length > len(self.buf):
                break  # body incomplete
            out.append((self.buf[i], self.buf[j:j + length]))
            i = j + length
        self.buf = self.buf[i:]
        return out


def publish_mid(first, body):
    """Packet id of a QoS 1/2 PUBLISH (MQTT 3.1.1), else None."""
    if first & 0xF0 != 0x30 or not (first >> 1) & 3:
        return None
    tlen = int.from_bytes(body[0:2], "big")
    return int.from_bytes(body[2 + tlen:4 + tlen], "big")


def strings(text):
    return b"".join(bytes.fromhex(x.replace("\\x", "")) for x in STRING.findall(text))


def check_trace(path, broker_port, mark=None):
    """(violations, pubacks, wal_writes, wal_syncs) of one strace -f -yy -xx
    log. With mark (bytes), also (violations, pubacks) up to the daemon's
    log line (a write to fd 2) containing it, as .at_mark; .early counts
    the acks that left before any sync since their PUBLISH was read."""
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

    write_seq = 0        # WAL writes begun so far
    synced_upto = 0      # every WAL write numbered <= this is on disk
    syncs_done = 0       # WAL syncs completed so far
    writing = {}         # pid -> True while a WAL write is unfinished
    syncing = {}         # pid -> write_seq when its sync began
    pending = {}         # pid -> ("send" | "read", data) of an unfinished call
    out, inn = MqttStream(), MqttStream()
    read_at = {}         # packet id -> syncs_done when its PUBLISH was read
    violations = pubacks = wal_writes = wal_syncs = early = 0
    at_mark = None

    def on_send(data):
        nonlocal violations, pubacks, early
        for first, body in out.feed(data):
            if first & 0xF0 != 0x40:
                continue
            pubacks += 1
            mid = int.from_bytes(body[0:2], "big")
            unsynced = mid not in read_at or syncs_done <= read_at.pop(mid)
            early += unsynced
            if unsynced or write_seq > synced_upto or any(writing.values()):
                violations += 1

    def on_read(data):
        for first, body in inn.feed(data):
            mid = publish_mid(first, body)
            if mid is not None:
                read_at[mid] = syncs_done

    def on_sync(began):
        nonlocal synced_upto, syncs_done, wal_syncs
        synced_upto = max(synced_upto, began)
        syncs_done += 1
        wal_syncs += 1

    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid = m.group("pid") or m.group("pid2") or "0"
            if m.group("rname"):
                name, rest = m.group("rname"), m.group("rrest")
                r = RESULT.search(rest)
                n = int(r.group(1)) if r and r.group(1) != "?" else -1
                if name in SYNCS and pid in syncing:
                    began = syncing.pop(pid)
                    if n >= 0:
                        on_sync(began)
                elif name in WAL_WRITES and pid in writing:
                    del writing[pid]
                elif pid in pending:
                    kind, data = pending.pop(pid)
                    if n > 0 and kind == "send":
                        on_send(data[:n])
                    elif n > 0:
                        on_read(strings(rest)[:n])  # a read's buffer is shown at exit
                continue
            name, args = m.group("name"), m.group("args")
            unfinished = args.endswith("<unfinished ...>")
            r = RESULT.search(args)
            n = int(r.group(1)) if r and r.group(1) != "?" else -1
            if mark and at_mark is None and name == "write" and args.startswith("2<"):
                if mark in strings(args):
                    at_mark = (violations, pubacks)
            if name in SOCKET_SENDS and fd_is(args, sock):
                # strace shows the whole buffer (-s is large); a short
                # write sent only the prefix the result says.
                if unfinished:
                    pending[pid] = ("send", strings(args))
                elif n > 0:
                    on_send(strings(args)[:n])
            elif name in SOCKET_READS and fd_is(args, sock):
                if unfinished:
                    pending[pid] = ("read", b"")
                elif n > 0:
                    on_read(strings(args)[:n])
            elif name in WAL_WRITES and fd_is(args, WAL):
                # dirty from the moment it begins
                write_seq += 1
                wal_writes += 1
                if unfinished:
                    writing[pid] = True
            elif name in SYNCS and fd_is(args, WAL):
                if unfinished:
                    syncing[pid] = write_seq
                elif n >= 0:
                    on_sync(write_seq)
    return TraceResult(violations, pubacks, wal_writes, wal_syncs, at_mark, early)


class TraceResult(tuple):
    def __new__(cls, violations, pubacks, wal_writes, wal_syncs, at_mark, early):
        r = super().__new__(cls, (violations, pubacks, wal_writes, wal_syncs))
        r.at_mark = at_mark
        r.early = early
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
             "-e", "trace=" + TRACED,
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
        # The last batch is committed once its rows are visible; its acks
        # leave in the same pass, before the SIGTERM is looked at.
        wait_for(lambda: d.count() >= N, 120, f"{N} rows")
        assert d.stop(60) == 0
    finally:
        if d.alive():
            d.kill()
    rows = d.count()
    log = d.log_text()
    res = check_trace(d.trace, broker.port)
    print(f"\nsync: {sync}: rows {rows}, pubacks {res[1]}, violations {res[0]}, "
          f"acks before any sync since their read {res.early}, "
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


def test_sighup_into_full(tmp_path, broker):
    """normal -> full while messages keep arriving: before the reload's
    line acks leave unsynced (normal is really in force), after it none
    does. (A reload taken up with a batch open is applied after that
    batch's COMMIT, just before its acks; store_set_sync fdatasyncs the WAL
    for it. The signal is read before the broker socket in a pass, so no
    batch is open then in practice and this run does not reach that case.)"""
    d = TracedDaemon(str(tmp_path), broker, cells=CELLS, storage_extra="  sync: normal\n")
    d.start()
    try:
        # Full speed: the reload is then taken up with a batch open, and
        # applied after its COMMIT, just before its acks.
        p = sim_start(broker, 4 * N, "--cells-n", str(len(CELLS)), "--id-prefix", "hup-n")
        wait_for(lambda: d.count() >= N // 2, 120, "the first rows")
        d.write_config(CELLS, storage_extra="  sync: full\n")
        os.kill(d.daemon_pid(), signal.SIGHUP)
        d.wait_log("storage.sync: full", 30)
        assert p.wait(300) == 0, p.stderr.read()
        wait_for(lambda: d.count() >= 4 * N, 120, f"{4 * N} rows")
        assert d.stop(60) == 0
    finally:
        if d.alive():
            d.kill()
    res = check_trace(d.trace, broker.port, mark=b"storage.sync: full")
    print(f"\nreload into full: before {res.at_mark}, all {tuple(res)}")
    assert res.at_mark is not None, "the reload's line is not in the trace"
    before_violations, before_pubacks = res.at_mark
    assert before_violations > 0  # normal was really in force before
    assert res[0] == before_violations  # and none after the switch
    assert res[1] >= 4 * N


def test_packet_parser_follows_the_stream():
    st = MqttStream()
    # two PUBACKs, a QoS 1 PUBLISH (topic "t", id 7) split across writes, a PUBACK
    pub = bytes([0x32, 6]) + b"\x00\x01t\x00\x07x"
    chunks = [b"\x40\x02\x00\x01\x40\x02\x00\x02" + pub[:1], pub[1:4], pub[4:],
              b"\x40\x02\x00\x03"]
    packets = [p for c in chunks for p in st.feed(c)]
    assert [f & 0xF0 for f, _ in packets] == [0x40, 0x40, 0x30, 0x40]
    assert publish_mid(*packets[2]) == 7
    assert publish_mid(*packets[0]) is None
    assert st.buf == b""


def test_checker_on_synthetic_traces(tmp_path):
    """The checker itself: an ack after its row's WAL write and sync
    passes; an ack while the write is unsynced, or before any sync since
    its PUBLISH was read (the ack-before-commit bug), does not."""
    port = 1883
    sock = f"7<TCP:[127.0.0.1:40000->127.0.0.1:{port}]>"
    wal = "5<" + "".join(f"\\x{b:02x}" for b in b"/tmp/x/patrol.db-wal") + ">"

    def hexs(b):
        return '"' + "".join(f"\\x{x:02x}" for x in b) + '"'

    publish = bytes([0x32, 6]) + b"\x00\x01t\x00\x01x"
    puback = b"\x40\x02\x00\x01"
    read = f"100 read({sock}, {hexs(publish)}, 65536) = {len(publish)}"
    write = f"100 pwrite64({wal}, {hexs(b'frame')}, 5, 0) = 5"
    sync = f"100 fdatasync({wal}) = 0"
    ack = f"100 sendto({sock}, {hexs(puback)}, 4, MSG_NOSIGNAL, NULL, 0) = 4"

    def run(*lines):
        path = tmp_path / "trace"
        path.write_text("\n".join(lines) + "\n")
        return check_trace(str(path), port)

    ok = run(read, write, sync, ack)
    assert (ok[0], ok[1], ok[2], ok[3], ok.early) == (0, 1, 1, 1, 0)
    dirty = run(read, write, sync, write, ack)
    assert dirty[0] == 1 and dirty.early == 0
    early = run(write, sync, read, ack)
    assert early[0] == 1 and early.early == 1
