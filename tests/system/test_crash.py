"""SIGKILL under load: acks leave only after COMMIT, so killing the daemon at
any moment loses nothing, and (worker, id) dedup stores nothing twice."""
import os
import random

from harness import sim_start, wait_for

CELLS = [f"c{i:03d}" for i in range(100)]
N = 50000


def test_sigkill_under_load_loses_and_duplicates_nothing(make_daemon, broker):
    seed = int(os.environ.get("GRIDPATROL_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"\nseed {seed}")
    d = make_daemon(cells=CELLS).start()
    pub = sim_start(broker, N, "--cells-n", "100", "--id-prefix", "k")
    # Kill at random points of the run, judged by rows already committed, so
    # every kill lands while messages are in flight.
    points = sorted(rng.sample(range(2000, N - 5000), 4))
    kills = 0
    for p in points:
        wait_for(lambda: d.count() >= p, 180, f"{p} rows before kill")
        d.kill()
        kills += 1
        before = d.count()
        print(f"kill {kills}: SIGKILL at {before} rows")
        d.start()
    assert pub.wait(300) == 0, pub.stderr.read()
    wait_for(lambda: d.count() >= N, 180, f"{N} rows")
    assert d.stop() == 0
    total = d.count()
    distinct = d.query("SELECT count(DISTINCT msg_id) FROM event")[0][0]
    print(f"after {kills} kills: {total} rows, {distinct} distinct ids, "
          f"{d.count('rejected')} rejected")
    assert kills >= 3
    assert total == N
    assert distinct == N
    assert d.count("rejected") == 0
    assert d.query("PRAGMA integrity_check")[0][0] == "ok"
