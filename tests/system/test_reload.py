"""SIGHUP with settings a reload cannot apply: the daemon says once, as a
warning, that a restart is needed, keeps running, and stops cleanly. (That
local time really stays the old zone is daemon.c's reload code: the zone is
set once at start with tzset and never again.)"""
import signal

from harness import wait_for


def test_timezone_change_warns_restart_needed(make_daemon):
    d = make_daemon().start()
    # The same zone again: nothing to warn about.
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("configuration reloaded")
    assert "reload: timezone" not in d.log_text()

    with open(d.conf) as f:
        conf = f.read()
    assert "timezone: Asia/Shanghai\n" in conf
    with open(d.conf, "w") as f:
        f.write(conf.replace("timezone: Asia/Shanghai\n", "timezone: Europe/Berlin\n"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.log_text().count("configuration reloaded") == 2, 20,
             "the second reload")
    log = d.log_text()
    assert ("reload: timezone Europe/Berlin takes effect only after a restart; "
            "local time stays Asia/Shanghai until then") in log, log
    warning = [line for line in log.splitlines() if "timezone Europe/Berlin" in line]
    assert len(warning) == 1 and warning[0].startswith("<4>"), warning
    assert d.stop() == 0
