"""A database that cannot grow: the daemon stops consuming, acknowledges
nothing it could not store, says so loudly, and resumes without loss once it
can write again."""
import contextlib
import os
import signal
import subprocess

import pytest

from harness import sim, wait_for

CELLS = [f"c{i:03d}" for i in range(100)]
N = 3000


def test_size_cap_pauses_consuming_and_resumes_after_reload(make_daemon, broker):
    d = make_daemon(cells=CELLS, storage_extra="  max_size: 160KiB\n").start()
    sim(broker, N, "--id-prefix", "full")
    d.wait_log("DATABASE NOT WRITABLE", 60)
    assert d.alive()
    stuck = d.count()
    assert 0 < stuck < N
    # Consuming has stopped: retries find the database still full (the odd
    # small batch may still fit) while the broker holds the rest.
    d.wait_log("database still not writable", 30)
    assert d.count() < N
    assert "database writable again" not in d.log_text()
    # Space returns: lift the cap and reload.
    d.write_config(CELLS)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("configuration reloaded")
    wait_for(lambda: d.count() >= N, 90, f"all {N} rows after the cap is lifted")
    d.wait_log("database writable again")
    assert d.stop() == 0
    assert d.count() == N
    assert d.query("SELECT count(DISTINCT msg_id) FROM event")[0][0] == N


@contextlib.contextmanager
def small_filesystem(tmp_path, size):
    """A tmpfs of `size` at tmp_path/fs, unmounted afterwards (lazily: the
    daemon may still hold files there until its fixture stops it)."""
    fs = tmp_path / "fs"
    fs.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(fs)],
                           capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is None or r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(fs)], capture_output=True)


def test_full_filesystem_pauses_consuming_and_resumes(make_daemon, broker, tmp_path):
    with small_filesystem(tmp_path, "4m") as fs:
        d = make_daemon(cells=CELLS, db=str(fs / "patrol.db")).start()
        # Leave the database about 300 KiB to grow into.
        st = os.statvfs(str(fs))
        free = st.f_bavail * st.f_frsize
        filler = fs / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 300 * 1024))
        sim(broker, N, "--id-prefix", "disk")
        d.wait_log("DATABASE NOT WRITABLE", 60)
        stuck = d.count()
        assert stuck < N
        filler.unlink()
        wait_for(lambda: d.count() >= N, 120, f"all {N} rows after space returns")
        d.wait_log("database writable again")
        assert d.stop() == 0
        assert d.count() == N
        assert d.query("PRAGMA integrity_check")[0][0] == "ok"


def test_small_filesystem_checkpoints_instead_of_stalling(make_daemon, broker, tmp_path):
    """Less free space than SQLite's automatic checkpoint interval (1000 WAL
    pages, ~4 MB): the WAL fills the disk before any checkpoint runs, and
    every later commit needs WAL space that only a checkpoint gives back.
    The rows themselves fit; the daemon must not stall for good."""
    with small_filesystem(tmp_path, "2m") as fs:
        d = make_daemon(cells=CELLS, db=str(fs / "patrol.db")).start()
        sim(broker, N, "--id-prefix", "small")
        wait_for(lambda: d.count() >= N, 120, f"all {N} rows on a 2 MB filesystem")
        assert d.stop() == 0
        assert d.count() == N
        assert d.query("PRAGMA integrity_check")[0][0] == "ok"
