"""Every Redis key the service uses, named in one place.

A session's keys share the hash tag `{<session id>}` and a user's keys `{<user id>}`, so
each group lands in one slot. User ids are validated (no `:`, `*`, `{`, spaces...), so no
key of one user or session can be a prefix or pattern match of another's.
"""

from __future__ import annotations

PREFIX = "wa"

# Field of the session meta hash holding when the session's thread expires at the latest
# (epoch ms), whatever happens: its hard deadline (start + SESSION_DURATION) plus the cleanup
# grace, like the session's other keys. Not the hard deadline itself: a turn whose message
# arrived before the deadline may still read and write the thread after it (cleanup waits
# for the turn, then deletes the thread), and a thread expired under that turn made the
# graph start the conversation over and the session's count drop (3 -> 1) in its record.
EXPIRES_AT_FIELD = "keepUntil"


def thread(thread_id: str) -> str:
    """The one hash holding a thread's checkpoints, channel values and pending writes."""
    return f"{PREFIX}:{{{thread_id}}}:thread"


def session_meta(session_id: str) -> str:
    """Hash: userId, startTime, lastActivity, conversationCount, expiresAt, backend."""
    return f"{PREFIX}:{{{session_id}}}:meta"


def user_active(user_id: str) -> str:
    """String: the user's active session id (at most one)."""
    return f"{PREFIX}:user:{{{user_id}}}:active"


def user_ended(user_id: str) -> str:
    """Hash of the user's ended-session records (JSON by session id); fields expire."""
    return f"{PREFIX}:user:{{{user_id}}}:ended"


def user_lock(user_id: str) -> str:
    """String: the token of the turn in progress for the user (expires by itself)."""
    return f"{PREFIX}:user:{{{user_id}}}:lock"


DEADLINES = f"{PREFIX}:deadlines"
"""Sorted set of active session ids scored by when they next expire (ms): cleanup's index."""

STATS = f"{PREFIX}:stats"
"""Hash of counters: sessions ended by reason, cleanup runs, last run and its duration."""

PROBE = f"{PREFIX}:probe"
"""String written (expiring after seconds) to check that Redis takes writes."""
