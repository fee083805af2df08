import pytest

from harness import Broker, Daemon


@pytest.fixture
def broker(tmp_path):
    b = Broker(str(tmp_path)).start()
    yield b
    b.stop()


@pytest.fixture
def make_daemon(tmp_path, broker):
    """Factory for daemons on this test's broker; all are stopped at the end."""
    made = []

    def make(**kw):
        d = Daemon(str(tmp_path), broker, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.alive():
            d.kill()
