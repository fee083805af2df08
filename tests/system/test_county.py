"""Beyond one box (SPEC): a village broker bridged to a county broker with
contrib/mosquitto/bridge-to-county.conf, a gridpatrold on each side, and
the link cut while devices keep publishing. Afterwards the county database
must hold exactly the village's (worker, msg_id) rows: none lost, none
twice; and the village must have gone on alerting meanwhile.

Two real mosquittos on loopback, each with its own free port and its own
directory (so its own persistence file), two real daemons, the real
simulator as the devices (QoS 1). The link is cut by stopping the county
broker. The second test also restarts the village broker during the
outage: the bridge's queue then survives only through the village broker's
persistence file, which this test gets written by a clean stop (SIGTERM:
Mosquitto saves on exit), not by autosave (60 s in the contrib file, too
slow for a test; a power cut would lose what came since the last autosave).
"""
import os
import pwd
import re
import subprocess
import time

from harness import (DEFAULT_EVENTS, MOSQUITTO, Daemon, Recorder, free_port, port_open,
                     publish, record_sink, sim, sim_start, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRIB = os.path.join(HERE, "..", "..", "contrib", "mosquitto")

VILLAGE_CELLS = [f"c{i:03d}" for i in range(10)]
# The county knows every village's cells; the second village sends nothing.
COUNTY_CELLS = VILLAGE_CELLS + [f"lc{i:02d}" for i in range(5)]


def bridge_conf(county_port):
    """contrib/mosquitto/bridge-to-county.conf for this test: the county is
    on loopback without TLS or login, and the bridge retries every second.
    Every other line is the file's own."""
    text = open(os.path.join(CONTRIB, "bridge-to-county.conf"), encoding="utf-8").read()
    changes = {
        r"^address .*$": f"address 127.0.0.1:{county_port}",
        r"^restart_timeout .*$": "restart_timeout 1",
        r"^remote_username .*$": "",
        r"^remote_password .*$": "",
        r"^bridge_cafile .*$": "",
    }
    for pattern, repl in changes.items():
        text, n = re.subn(pattern, repl, text, flags=re.M)
        assert n == 1, f"{pattern} not in the contrib bridge file"
    # What the test relies on must still be there.
    for line in ("cleansession false", "local_cleansession false", "topic patrol/# out 1",
                 "persistence true"):
        assert re.search(f"^{re.escape(line)}$", text, re.M), line
    return text


class SiteBroker:
    """A mosquitto with contrib/mosquitto/gridpatrol.conf (persistence,
    queue limits) plus `extra`, persisting into its own directory."""

    def __init__(self, tmp, name, extra=""):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        base = open(os.path.join(CONTRIB, "gridpatrol.conf"), encoding="utf-8").read()
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n"
                    "allow_anonymous true\n"
                    f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
                    f"persistence_location {self.dir}/\n"
                    "log_dest stderr\n"
                    + base + "\n" + extra)
        self.proc = None

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf)
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None,
                 10, f"mosquitto {self.dir} to listen")
        assert self.proc.poll() is None, open(self.log).read()
        return self

    def stop(self):
        """A clean stop: Mosquitto writes its persistence file on the way out."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(20) == 0, open(self.log).read()[-2000:]
            self.logf.close()
        self.proc = None


def cut_link(county_b, county):
    """Stops the county broker; returns the county's row count once its
    daemon has seen the link go (it commits what it read first, in the
    same wake-up), so that nothing more can arrive there."""
    county_b.stop()
    county.wait_log("lost connection to", 20)
    return county.count()


def pairs(d):
    return d.query("SELECT worker, msg_id FROM event ORDER BY worker, msg_id")


def alerts_yaml(rec):
    return ("alerts:\n  startup_grace: 0s\n  daily_digest: \"off\"\n"
            "  retry: { min: 1s, max: 2s, give_up_after: 1h }\n  sinks:\n"
            + record_sink("record", rec.dir))


def setup_sites(tmp):
    county_b = SiteBroker(tmp, "county-broker").start()
    village_b = SiteBroker(tmp, "village-broker", bridge_conf(county_b.port)).start()
    vdir = os.path.join(tmp, "village")
    cdir = os.path.join(tmp, "county")
    os.makedirs(vdir)
    os.makedirs(cdir)
    vrec = Recorder(os.path.join(tmp, "village-sink"))
    crec = Recorder(os.path.join(tmp, "county-sink"))
    village = Daemon(vdir, village_b, cells=VILLAGE_CELLS, events=DEFAULT_EVENTS,
                     extra=alerts_yaml(vrec), client_id="gp-village").start()
    county = Daemon(cdir, county_b, cells=COUNTY_CELLS, events=DEFAULT_EVENTS,
                    extra=alerts_yaml(crec), client_id="gp-county").start()
    return county_b, village_b, village, county, vrec, crec


def stop_all(*things):
    for t in things:
        if isinstance(t, Daemon):
            if t.alive():
                t.kill()
        elif t is not None:
            t.stop()


def assert_same_rows(village, county, what, expect):
    """Once the village has stored all `expect` messages the devices sent
    (the simulator returns when the broker has them, not the daemon), the
    county must come to hold exactly the same rows."""
    wait_for(lambda: village.count() == expect, 60, f"the village to store {expect} ({what})")
    v = pairs(village)
    try:
        wait_for(lambda: county.count() >= len(v), 90, f"county to catch up ({what})")
    except AssertionError:
        pass  # the counts below say what is missing
    v, c = pairs(village), pairs(county)
    lost = set(v) - set(c)
    extra = set(c) - set(v)
    print(f"\n[{what}] village rows {len(v)}, county rows {len(c)}, distinct county "
          f"(worker, msg_id) {len(set(c))}, lost {len(lost)}, extra {len(extra)}, "
          f"county rejected {county.count('rejected')}")
    assert not lost and not extra, (sorted(lost)[:5], sorted(extra)[:5])
    assert len(c) == len(set(c)) == len(v)
    assert county.count("rejected") == 0


def test_link_outage_county_gets_exactly_the_village_rows(tmp_path):
    tmp = str(tmp_path)
    county_b = village_b = village = county = None
    try:
        county_b, village_b, village, county, vrec, crec = setup_sites(tmp)
        sim(village_b, 300, "--cells-n", "10", "--id-prefix", "before")
        assert_same_rows(village, county, "link up", 300)

        # Devices keep publishing; the link goes down under them.
        load = sim_start(village_b, 3000, "--cells-n", "10", "--rate", "150",
                         "--id-prefix", "during")
        wait_for(lambda: county.count() > 400, 30, "bridged traffic before the cut")
        cut_at = cut_link(county_b, county)
        at_cut = village.count()
        publish(village_b, "patrol/c003/w017/fishing",
                f'{{"id":"fish-1","ts":{int(time.time())},"note":"outage"}}'.encode())
        # The village alerts on its own while the county is unreachable.
        wait_for(lambda: any(a.get("cell") == "c003" for a in vrec.alerts("event")), 20,
                 "the village's fishing alert during the outage")
        wait_for(lambda: village.count() >= at_cut + 500, 30, "village ingest during the outage")
        queued = village.count() - cut_at
        assert county.count() == cut_at  # nothing reached the county meanwhile
        county_b.start()
        assert load.wait(120) == 0, load.stderr.read()
        sim(village_b, 200, "--cells-n", "10", "--id-prefix", "after")
        print(f"\n[link outage] county had {cut_at} rows at the cut, {queued} stored by the "
              f"village while the link was down (at least: the load went on); village alerts "
              f"delivered during the outage: {len(vrec.alerts('event'))}")
        assert_same_rows(village, county, "after link outage", 300 + 3000 + 1 + 200)
        wait_for(lambda: any(a.get("cell") == "c003" for a in crec.alerts("event")), 30,
                 "the county's own fishing alert")
        assert village.stop() == 0 and county.stop() == 0
    finally:
        stop_all(village, county, village_b, county_b)


def test_village_broker_restart_during_outage_keeps_the_queue(tmp_path):
    tmp = str(tmp_path)
    county_b = village_b = village = county = None
    try:
        county_b, village_b, village, county, vrec, crec = setup_sites(tmp)
        sim(village_b, 200, "--cells-n", "10", "--id-prefix", "before")
        assert_same_rows(village, county, "link up", 200)

        cut_at = cut_link(county_b, county)
        sim(village_b, 1000, "--cells-n", "10", "--id-prefix", "queued1")
        wait_for(lambda: village.count() == cut_at + 1000, 30, "village stores the first part")
        # The bridge's queue is now only in the village broker's memory;
        # a clean stop writes it to the persistence file.
        village_b.stop()
        db_file = os.path.join(village_b.dir, "mosquitto.db")
        assert os.path.getsize(db_file) > 0
        print(f"\n[village restart] village broker persistence file: "
              f"{os.path.getsize(db_file)} bytes after a clean stop")
        village_b.start()
        village.wait_log("reconnected to", 90)
        sim(village_b, 1000, "--cells-n", "10", "--id-prefix", "queued2")
        publish(village_b, "patrol/c005/w021/fishing", b'{"id":"fish-2","note":"restart"}')
        wait_for(lambda: any(a.get("cell") == "c005" for a in vrec.alerts("event")), 20,
                 "the village's fishing alert after its broker restarted")
        wait_for(lambda: village.count() == cut_at + 2001, 30, "village stores the second part")
        assert county.count() == cut_at
        county_b.start()
        print(f"\n[village restart] county had {cut_at} rows at the cut; the village stored "
              f"2001 more during the outage, 1000 of them before its broker restarted")
        assert_same_rows(village, county, "after village broker restart", 200 + 2001)
        assert village.stop() == 0 and county.stop() == 0
    finally:
        stop_all(village, county, village_b, county_b)
