"""Start-up from an older database: the 2 -> 3 migration fills event_span
from the history already stored, says so in the log, and the daemon's
deadlines and `status` then read the last patrols from it."""
import json
import os
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta, timezone

from harness import publish, wait_for

GRIDPATROL = os.environ.get("GRIDPATROL", "gridpatrol")
SH = timezone(timedelta(hours=8))


def rfc(t):
    return datetime.fromtimestamp(t, SH).isoformat()


def test_upgrade_from_schema_2_keeps_last_patrols(make_daemon, broker):
    d = make_daemon(cells=("yh-01", "yh-02")).start()
    t = int(time.time())
    publish(broker, "patrol/yh-01/w017/checkin", json.dumps({"id": "a", "ts": rfc(t - 600)}).encode())
    publish(broker, "patrol/yh-01/w021/checkin", json.dumps({"id": "b", "ts": rfc(t - 300)}).encode())
    publish(broker, "patrol/yh-01/w030/checkin", json.dumps({"id": "c", "ts": rfc(t - 900)}).encode())
    wait_for(lambda: d.count() == 3, 10, "three events stored")
    assert d.stop() == 0

    # What a box still on schema 2 holds: the same history, nothing that
    # the 2 -> 3 migration adds.
    con = sqlite3.connect(d.db)
    con.executescript("DROP TABLE claim_request; DROP INDEX alert_open; "
                      "DROP INDEX alert_claimed; "
                      "ALTER TABLE alert DROP COLUMN claimed_by; "
                      "ALTER TABLE alert DROP COLUMN claimed_at; "
                      "ALTER TABLE alert DROP COLUMN resolved_at; "
                      "DROP TABLE event_span; DROP TABLE daemon_state; "
                      "ALTER TABLE delivery DROP COLUMN ext_id; PRAGMA user_version = 2;")
    con.close()
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "status"], capture_output=True)
    assert r.returncode == 2 and b"start gridpatrold once" in r.stderr, r.stderr

    d.start()
    log = d.log_text()
    assert "upgrading database schema 2 -> 4" in log
    assert "database schema upgraded in" in log
    assert d.query("PRAGMA user_version") == [(4,)]
    assert d.query("SELECT cell, type, first_ts, last_ts, last_worker FROM event_span") == [
        ("yh-01", "checkin", t - 900, t - 300, "w021")]
    r = subprocess.run([GRIDPATROL, "-c", d.conf, "status", "--format", "json"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cells = {c["id"]: c for c in json.loads(r.stdout)["cells"]}
    assert cells["yh-01"]["last_patrol"] == {"ts": rfc(t - 300), "worker": "w021"}
    assert cells["yh-02"]["last_patrol"] is None
    # Not migrated twice.
    assert d.stop() == 0
    d.start()
    assert "upgrading database schema" not in d.log_text()
    assert d.stop() == 0
