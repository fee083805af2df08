"""contrib/mosquitto/gridpatrol.acl against a real mosquitto: a device logged
in as w017 cannot get a row stored as w021, while gridpatrold (reading
patrol/# and the broker's dropped-messages counter, writing its status
topic) and every device under its own id work."""
import os
import subprocess

import pytest

from harness import Broker, Daemon, publish, wait_for

ACL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "..", "..", "contrib", "mosquitto", "gridpatrol.acl")


@pytest.fixture
def acl_broker(tmp_path):
    tmp = str(tmp_path)
    pwfile = os.path.join(tmp, "mosquitto.passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pwfile, "gridpatrold", "daemon-pw"],
                   check=True)
    for worker in ("w017", "w021"):
        subprocess.run(["mosquitto_passwd", "-b", pwfile, worker, worker + "-pw"], check=True)
    acl = os.environ.get("GRIDPATROL_TEST_ACL", ACL)  # to see the test fail without it
    b = Broker(tmp, anonymous=False,
               listener_extra=f"password_file {pwfile}\nacl_file {acl}\nlog_type all\n"
               "sys_interval 1\n").start()
    secret = os.path.join(tmp, "gp.secret")
    with open(secret, "w") as f:
        f.write("daemon-pw\n")
    d = Daemon(tmp, b, mqtt_extra=f"  username: gridpatrold\n  password_file: {secret}\n")
    yield b, d
    if d.alive():
        d.kill()
    b.stop()


def as_worker(broker, worker, topic, payload):
    publish(broker, topic, payload, args=["-u", worker, "-P", worker + "-pw"])


def test_device_cannot_report_as_another_worker(acl_broker):
    b, d = acl_broker
    d.start()
    as_worker(b, "w017", "patrol/yh-01/w021/checkin", b'{"id":"forged"}')
    # Nor claim an alert in another's name (a claim is an event like any).
    as_worker(b, "w017", "patrol/yh-01/w021/claim", b'{"id":"forged-claim"}')
    as_worker(b, "w017", "patrol/yh-01/w017/checkin", b'{"id":"own-17"}')
    as_worker(b, "w021", "patrol/yh-02/w021/checkin", b'{"id":"own-21"}')
    # The broker hands messages on in order, so once w021's own message is
    # stored the forged one, published before it, had its chance.
    wait_for(lambda: d.count("event", "msg_id = 'own-21'") == 1, 20, "w021's own row")
    assert d.query("SELECT worker, msg_id FROM event ORDER BY id") == [
        ("w017", "own-17"), ("w021", "own-21")]
    # Dropped by the broker, not merely rejected by the daemon.
    assert d.count("rejected") == 0
    log = open(b.log, encoding="utf-8", errors="replace").read()
    assert "Denied PUBLISH from" in log and "patrol/yh-01/w021/checkin" in log
    assert "patrol/yh-01/w021/claim" in "".join(
        line for line in log.splitlines(True) if "Denied" in line)
    # The daemon's own status publishes (and last will) are allowed.
    assert "gridpatrol/status" not in "".join(
        line for line in log.splitlines(True) if "Denied" in line)
    # The ACL lets the daemon read $SYS, or broker drops would go unnoticed
    # (without its "topic read $SYS/#" line this times out).
    d.wait_log("messages dropped since it started", 15)
    assert d.stop() == 0
