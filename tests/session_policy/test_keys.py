"""The key layout: every script's keys in one slot, users spread over shards and slots."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from session_policy import keys


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


@pytest.mark.parametrize("user", ["alice", "a.b@example.com", "1", "x" * 128])
def test_a_user_their_sessions_and_their_shard_share_one_slot(user: str) -> None:
    session_id = f"session:{user}:1796347807170"
    shard = keys.shard_of(user)
    names = [
        keys.user_active(user),
        keys.user_ended(user),
        keys.user_lock(user),
        keys.user_queue(user),
        keys.session_meta(session_id),
        keys.thread(session_id),
        keys.deadlines(shard),
        keys.ended_counts(shard),
    ]
    assert len(set(names)) == len(names)
    assert {slot(name) for name in names} == {slot(keys.deadlines(shard))}


def test_the_scripts_patterns_name_the_same_keys() -> None:
    user, session_id = "alice", "session:alice:1796347807170"
    meta, thread, active, ended, lock, queue = keys.shard_patterns(keys.shard_of(user))
    assert meta % session_id == keys.session_meta(session_id)
    assert thread % session_id == keys.thread(session_id)
    assert (active % user, ended % user, lock % user, queue % user) == (
        keys.user_active(user),
        keys.user_ended(user),
        keys.user_lock(user),
        keys.user_queue(user),
    )


def test_users_spread_over_every_shard_and_evenly_over_three_primaries() -> None:
    shards = [keys.shard_of(f"user-{i}") for i in range(3000)]
    assert set(shards) == set(range(keys.SHARDS))
    # A 3-primary cluster with the usual slot ranges: each primary gets about a third.
    primary = [0, 0, 0]
    for shard in shards:
        s = slot(keys.deadlines(shard))
        primary[0 if s <= 5460 else 1 if s <= 10922 else 2] += 1
    assert min(primary) / len(shards) >= 0.28, primary


def test_a_thread_that_is_no_session_has_its_own_tag() -> None:
    for thread_id in ["dev-thread", "6d1f1c9e-4a4b-4f7e-9d9b-1f0b0f6a2c11", "session:bad id:1"]:
        assert keys.thread(thread_id) == f"wa:{{{thread_id}}}:{thread_id}:thread"
        assert slot(keys.thread(thread_id)) == slot(keys.session_meta(thread_id))


@pytest.mark.parametrize(
    "thread_id", ["session:alice:1", "dev-thread", "with}:inside", "a}:b}:c", "session:x:y:1"]
)
def test_thread_id_of_reads_back_any_thread_key(thread_id: str) -> None:
    assert keys.thread_id_of(keys.thread(thread_id)) == thread_id


def test_thread_id_of_ignores_other_keys() -> None:
    assert keys.thread_id_of(keys.session_meta("session:alice:1")) is None
    assert keys.thread_id_of(keys.user_active("alice")) is None
    assert keys.thread_id_of("other:{x}:x:thread") is None
