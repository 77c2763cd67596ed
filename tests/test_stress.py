"""Short runs of the stress harness (tests/stress.py) that fit in the test suite.

Each starts its own redis-server and two daphne processes (one daphne for the
in-memory layer), runs a few hundred random writes over websockets, HTTP and the
ORM against two dozen watchers, and compares every watcher's mirror with a fresh
read. The long runs (3,000 writes each) are ``make stress``.
"""

import pytest

from tests.stress import Config, run_stress

pytestmark = pytest.mark.slow


def stress(tmp_path, **options):
    config = Config(workdir=tmp_path, **{"writes": 300, "rate": 200, **options})
    result = run_stress(config)
    print(result.report())
    assert sum(result.writes.values()) == config.writes, result.summary()
    assert result.stats["pushes"] > config.writes // 2, result.summary()
    # the notes change owners: no watcher of a user's notes is pushed another's
    assert result.stats["foreign_pushes"] == 0, result.report()
    return result


def assert_healed(result):
    assert not result.errors, result.report()
    assert result.divergent == 0, result.report()


@pytest.mark.parametrize("layer", ["core", "pubsub", "memory"])
def test_every_watcher_matches_a_fresh_read(tmp_path, layer):
    assert_healed(stress(tmp_path, layer=layer, seed=11))


def test_lost_changes_are_reported_without_resync(tmp_path):
    """The harness can fail: drop a fifth of the change messages, resync off."""
    result = stress(tmp_path, lossy=0.2, resync=False, seed=12)
    assert result.stats["dropped"] > 0, result.summary()
    assert result.divergent > 0, result.report()


@pytest.mark.parametrize("layer", ["core", "pubsub", "memory"])
def test_lost_changes_are_healed_by_resync(tmp_path, layer):
    result = stress(tmp_path, layer=layer, lossy=0.2, seed=13)
    assert result.stats["dropped"] > 0, result.summary()
    assert_healed(result)


@pytest.mark.parametrize("layer", ["core", "pubsub"])
def test_redis_killed_and_restarted(tmp_path, layer):
    result = stress(
        tmp_path, layer=layer, kill_redis=True, writes=500, fault_for=1.5, seed=14
    )
    assert result.stats["redis_kills"] == 1, result.summary()
    assert_healed(result)


def test_sockets_cut_and_resumed(tmp_path):
    result = stress(tmp_path, cut_sockets=True, writes=500, fault_for=1.5, seed=15)
    assert result.stats["reconnects"] >= 4, result.summary()
    assert result.stats["resumed"] == result.stats["reconnects"], result.summary()
    assert_healed(result)


def test_sockets_cut_and_reloaded(tmp_path):
    """Without resume, a reconnect reads every watch again, which heals every
    list. An object that its watcher may not see at that moment (a note given to
    another user) is a 404, and a 404 watches nothing: when the note comes back,
    nobody tells the watcher. Such rows are "unwatched"; nothing else may differ."""
    result = stress(
        tmp_path, cut_sockets=True, resume=False, writes=500, fault_for=1.5, seed=16
    )
    assert result.stats["reconnects"] >= 4, result.summary()
    assert result.stats["resumed"] == 0, result.summary()
    assert not result.errors, result.report()
    assert [d for d in result.divergences if d.kind != "unwatched"] == [], (
        result.report()
    )
