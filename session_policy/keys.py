"""Every Redis key the service uses, named in one place.

Keys are laid out for Redis Cluster: each Lua script touches the keys of one hash slot only.
Users are spread over `SHARDS` shards (by a hash of the user id); every key of a user and of
the user's sessions carries the shard's hash tag `{<shard>}`, and so does that shard's part
of cleanup's deadline index and its counters: a script that starts, records or ends a session,
or sweeps a shard, stays in one slot. The sweep walks every shard. A thread that is not a
session's is tagged with its own id.

The Lua scripts get the names as patterns (`shard_patterns`) with `%s` for the session or user
id, made here like every other name. User ids are validated (no `:`, `*`, `{`, spaces...), so
no key of one user or session can be a prefix or pattern match of another's.
"""

from __future__ import annotations

import zlib

from session_policy.ids import InvalidIdError, SessionId

PREFIX = "wa"

# Field of the session meta hash holding when the session's thread expires at the latest
# (epoch ms), whatever happens: its hard deadline (start + SESSION_DURATION) plus the cleanup
# grace, like the session's other keys. Not the hard deadline itself: a turn whose message
# arrived before the deadline may still read and write the thread after it (cleanup waits
# for the turn, then deletes the thread), and a thread expired under that turn made the
# graph start the conversation over and the session's count drop (3 -> 1) in its record.
KEEP_UNTIL_FIELD = "keepUntil"

# 64 spreads evenly over a few primaries (3 primaries with the usual slot ranges: 21/22/21).
SHARDS = 64


def shard_of(user_id: str) -> int:
    return zlib.crc32(user_id.encode()) % SHARDS


def _tag(thread_id: str) -> str:
    """The hash tag of a thread's keys: its user's shard for a session's, else the id."""
    try:
        return str(shard_of(SessionId.parse(thread_id).user_id))
    except InvalidIdError:
        return thread_id


def _pattern(tag: str, kind: str) -> str:
    return f"{PREFIX}:{{{tag}}}:%s:{kind}"


def shard_patterns(shard: int) -> list[str]:
    """Names in a shard, `%s` for the id: session meta, thread (by session id), and the
    user's active pointer, ended records, turn lock and turn queue (by user id)."""
    kinds = ("meta", "thread", "active", "ended", "lock", "queue")
    return [_pattern(str(shard), kind) for kind in kinds]


def thread(thread_id: str) -> str:
    """The one hash holding a thread's checkpoints, channel values and pending writes."""
    return _pattern(_tag(thread_id), "thread") % thread_id


def session_meta(session_id: str) -> str:
    """Hash: userId, startTime, lastActivity, conversationCount, expiresAt, inactiveAt,
    endsAt and endsBy (the first deadline and its reason), keepUntil (`KEEP_UNTIL_FIELD`).
    The checkpointer's guard: no meta, no write."""
    return _pattern(_tag(session_id), "meta") % session_id


def user_active(user_id: str) -> str:
    """String: the user's active session id (at most one)."""
    return _pattern(str(shard_of(user_id)), "active") % user_id


def user_ended(user_id: str) -> str:
    """Hash of the user's ended-session records (JSON by session id); fields expire."""
    return _pattern(str(shard_of(user_id)), "ended") % user_id


def user_lock(user_id: str) -> str:
    """String: the token of the turn in progress for the user (expires by itself)."""
    return _pattern(str(shard_of(user_id)), "lock") % user_id


def user_queue(user_id: str) -> str:
    """Hash: the user's messages waiting for the turn lock (DOUBLE_TEXTING=enqueue), each
    waiting turn's token -> its ticket, a field that expires unless its waiter keeps polling;
    and `QUEUE_NEXT`, the last ticket given out (the key expires with its last waiter)."""
    return _pattern(str(shard_of(user_id)), "queue") % user_id


QUEUE_NEXT = "#"
"""Field of `user_queue` counting tickets (turn tokens are hex, so never `#`)."""


def deadlines(shard: int) -> str:
    """Sorted set of the shard's active session ids scored by their next deadline (ms)."""
    return f"{PREFIX}:{{{shard}}}:deadlines"


def ended_counts(shard: int) -> str:
    """Hash: sessions of the shard ended, by reason (`ended:<reason>`)."""
    return f"{PREFIX}:{{{shard}}}:stats"


CLEANUP_STATS = f"{PREFIX}:cleanup"
"""Hash: cleanup runs, the last run and its duration (written by the sweeping process)."""

PROBE = f"{PREFIX}:probe"
"""String written (expiring after seconds) to check that Redis takes writes."""


def shard_probe(shard: int) -> str:
    """`PROBE` in a shard's slot: on a cluster the probe writes one per shard."""
    return f"{PREFIX}:{{{shard}}}:probe"


THREADS = f"{PREFIX}:{{*:thread"
"""Glob of every `thread()` key, for listing all threads (never on the service's path)."""


def thread_id_of(key: str) -> str | None:
    """The thread id of a `thread()` key (None for any other key)."""
    head, tail = f"{PREFIX}:{{", ":thread"
    if not (key.startswith(head) and key.endswith(tail)):
        return None
    body = key[len(head) : -len(tail)]  # "<tag>}:<thread id>"; a shard's tag has no "}"
    at = body.find("}:")
    while at >= 0:
        tag, thread_id = body[:at], body[at + 2 :]
        if _tag(thread_id) == tag:
            return thread_id
        at = body.find("}:", at + 1)
    return None
