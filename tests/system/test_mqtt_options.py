"""Broker connection options against a real mosquitto: username/password
from a file, TLS with a private CA, MQTT 5 with session expiry."""
import os
import subprocess

import pytest

from harness import Broker, Daemon, publish, wait_for


@pytest.fixture
def cleanup():
    things = []
    yield things
    for t in reversed(things):
        if isinstance(t, Daemon):
            if t.alive():
                t.kill()
        else:
            t.stop()


def test_username_and_password_file(tmp_path, cleanup):
    tmp = str(tmp_path)
    pwfile = os.path.join(tmp, "mosquitto.passwd")
    subprocess.run(["mosquitto_passwd", "-b", "-c", pwfile, "gridpatrold", "s3cret/云华"],
                   check=True)
    subprocess.run(["mosquitto_passwd", "-b", pwfile, "device", "dev"], check=True)
    b = Broker(tmp, anonymous=False, listener_extra=f"password_file {pwfile}\n").start()
    cleanup.append(b)
    secret = os.path.join(tmp, "gp.secret")
    with open(secret, "w") as f:
        f.write("s3cret/云华\n")  # a trailing newline is not part of it
    d = Daemon(tmp, b, mqtt_extra=f"  username: gridpatrold\n  password_file: {secret}\n")
    cleanup.append(d)
    d.start()
    publish(b, "patrol/yh-01/w017/checkin", b'{"id":"auth-1"}', args=["-u", "device", "-P", "dev"])
    wait_for(lambda: d.count() == 1, 20, "row via authenticated broker")
    assert d.stop() == 0

    # A wrong password is refused by the broker; the daemon says so and keeps trying.
    with open(secret, "w") as f:
        f.write("wrong")
    d.start(wait_connected=False)
    d.wait_log("refused", 20)
    assert d.alive()
    assert d.stop() == 0


def _make_ca(tmp):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.crt")
    key, csr, crt = (os.path.join(tmp, n) for n in ("srv.key", "srv.csr", "srv.crt"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=gridpatrol test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, key, crt


def test_tls_with_private_ca(tmp_path, cleanup):
    tmp = str(tmp_path)
    ca, key, crt = _make_ca(tmp)
    b = Broker(tmp, listener_extra=f"cafile {ca}\ncertfile {crt}\nkeyfile {key}\n").start()
    cleanup.append(b)
    d = Daemon(tmp, b, mqtt_extra=f"  tls:\n    ca_file: {ca}\n")
    cleanup.append(d)
    d.start()
    publish(b, "patrol/yh-02/w021/litter", b'{"id":"tls-1","note":"\xe5\x9e\x83\xe5\x9c\xbe"}',
            args=["--cafile", ca])
    wait_for(lambda: d.count() == 1, 20, "row via TLS")
    assert d.query("SELECT note FROM event")[0][0] == "垃圾"
    assert d.stop() == 0


def test_mqtt5_persistent_session(tmp_path, cleanup):
    tmp = str(tmp_path)
    b = Broker(tmp).start()
    cleanup.append(b)
    d = Daemon(tmp, b, mqtt_extra="  protocol: 5\n  session_expiry: 1d\n")
    cleanup.append(d)
    d.start()
    assert d.stop() == 0
    for i in range(20):
        publish(b, "patrol/yh-01/w017/checkin", b'{"id":"v5-%d"}' % i)
    d.start()
    wait_for(lambda: d.count() == 20, 20, "20 messages queued while the daemon was away")
    assert d.stop() == 0
