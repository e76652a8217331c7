"""The session index on Redis: Lua scripts make every state change atomic and exactly-once.

Layout (see `keys.py`): a meta hash per active session, the user's active-session pointer,
a sorted set of deadlines (cleanup's index: no KEYS, no SCAN), and a per-user hash of
ended-session records whose fields expire after the retention (hash-field TTLs, Redis 7.4+):
once a session ends, no key named after it remains. Every key of an active
session expires by itself shortly after the session's hard deadline (a grace so that cleanup
can still write the ended record, and a turn whose message arrived before the deadline can
finish in its thread), which is the backstop when no server runs.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from session_policy import keys
from session_policy.ids import InvalidIdError, SessionId
from session_policy.models import (
    END_REASONS,
    Backend,
    EndedSession,
    EndReason,
    Session,
    SessionLimits,
    iso,
)

# Shared by the scripts below: ends one session exactly once (nil if it already ended).
_END_SESSION = """
local function end_session(prefix, sid, reason, now, retention)
  local metakey = prefix .. ':{' .. sid .. '}:meta'
  local m = redis.call('HMGET', metakey, 'userId', 'startTime', 'conversationCount')
  if not m[1] then return nil end
  redis.call('DEL', metakey, prefix .. ':{' .. sid .. '}:thread')
  redis.call('ZREM', prefix .. ':deadlines', sid)
  local active = prefix .. ':user:{' .. m[1] .. '}:active'
  if redis.call('GET', active) == sid then redis.call('DEL', active) end
  local record = cjson.encode({sessionId = sid, userId = m[1], startTime = tonumber(m[2]),
    endTime = now, conversationCount = tonumber(m[3]), endReason = reason})
  local ended = prefix .. ':user:{' .. m[1] .. '}:ended'
  redis.call('HSET', ended, sid, record)
  redis.call('HPEXPIRE', ended, retention, 'FIELDS', 1, sid)
  redis.call('PEXPIRE', ended, retention)
  redis.call('HINCRBY', prefix .. ':stats', 'ended:' .. reason, 1)
  return record
end
"""

# KEYS: user's active pointer, deadlines. ARGV: prefix, user, now, duration, inactivity, grace,
# the field telling the checkpointer when the thread expires (keys.EXPIRES_AT_FIELD).
_GET_OR_START_FUNCTION = """
local function get_or_start()
local prefix, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local current = redis.call('GET', KEYS[1])
if current then
  local meta = redis.call('HGETALL', prefix .. ':{' .. current .. '}:meta')
  if #meta > 0 then return {current, meta} end
  redis.call('ZREM', KEYS[2], current)
end
-- A new id; never one that an ended session of the same millisecond already used.
local start = now
local sid = 'session:' .. user .. ':' .. start
local ended = prefix .. ':user:{' .. user .. '}:ended'
while redis.call('HEXISTS', ended, sid) == 1 do
  start = start + 1
  sid = 'session:' .. user .. ':' .. start
end
local expires = start + tonumber(ARGV[4])
local inactive = math.min(expires, start + tonumber(ARGV[5]))
local keep = expires + tonumber(ARGV[6])
local metakey = prefix .. ':{' .. sid .. '}:meta'
redis.call('HSET', metakey, 'userId', user, 'startTime', start, 'lastActivity', start,
  'conversationCount', 0, 'expiresAt', expires, 'inactiveAt', inactive, ARGV[7], keep)
redis.call('PEXPIREAT', metakey, keep)
redis.call('SET', KEYS[1], sid, 'PXAT', keep)
redis.call('ZADD', KEYS[2], inactive, sid)
return {sid, redis.call('HGETALL', metakey)}
end
"""
_GET_OR_START = _GET_OR_START_FUNCTION + "return get_or_start()\n"

# As _GET_OR_START, after taking the user's turn lock: KEYS[3] the lock; ARGV[8] the token,
# ARGV[9] its TTL (ms). False when another turn holds the lock.
_BEGIN_TURN = (
    _GET_OR_START_FUNCTION
    + """
if not redis.call('SET', KEYS[3], ARGV[8], 'NX', 'PX', ARGV[9]) then return false end
return get_or_start()
"""
)

# Deletes a turn lock only if this token still holds it (1 if it did, else 0).
_RELEASE = """
local function release(lock, token)
  if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
  return 0
end
"""

# KEYS: meta, deadlines, and the user's turn lock to release (optional). ARGV: session id,
# now, conversation count, inactivity ms, and the lock's token.
_RECORD_TURN = (
    _RELEASE
    + """
if KEYS[3] then release(KEYS[3], ARGV[5]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local now = tonumber(ARGV[2])
local expires = tonumber(redis.call('HGET', KEYS[1], 'expiresAt'))
local inactive = math.min(expires, now + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'lastActivity', now, 'conversationCount', ARGV[3],
  'inactiveAt', inactive)
redis.call('ZADD', KEYS[2], inactive, ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""
)

# ARGV: prefix, session id, reason, now, retention ms.
_END = (
    _END_SESSION
    + """
return end_session(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
"""
)

# KEYS: deadlines. ARGV: prefix, now, retention ms, batch size.
_SWEEP = (
    _END_SESSION
    + """
local prefix, now, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, sid in ipairs(due) do
  local f = redis.call('HMGET', prefix .. ':{' .. sid .. '}:meta', 'expiresAt', 'inactiveAt',
    'userId')
  if not f[1] then
    redis.call('ZREM', KEYS[1], sid)  -- its keys already expired by TTL
  elseif redis.call('EXISTS', prefix .. ':user:{' .. f[3] .. '}:lock') == 1 then
    -- A turn of this user is running: ending the session now would drop that answered
    -- turn (its writes refused, its count missing from the record). The first sweep after
    -- the turn ends it (the lock of a crashed process expires by itself); out of this
    -- sweep's range meanwhile, so the batches of this sweep move on.
    redis.call('ZADD', KEYS[1], now + 1, sid)
  else
    local expires, inactive = tonumber(f[1]), tonumber(f[2])
    local reason = nil
    -- The deadline that came first names the reason (inactiveAt is never after expiresAt).
    if now >= inactive then
      if inactive < expires then reason = 'inactivity' else reason = 'duration' end
    end
    if reason then
      table.insert(out, end_session(prefix, sid, reason, now, retention))
    else
      redis.call('ZADD', KEYS[1], math.min(expires, inactive), sid)
    end
  end
end
return {#due, out}
"""
)

# KEYS: lock. ARGV: token.
_UNLOCK = _RELEASE + "return release(KEYS[1], ARGV[1])\n"

SWEEP_BATCH = 500


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _session(session_id: bytes | str, flat: list[Any]) -> Session:
    meta = {_decode(flat[i]): _decode(flat[i + 1]) for i in range(0, len(flat), 2)}
    return Session(
        session_id=_decode(session_id),
        user_id=meta["userId"],
        start_ms=int(meta["startTime"]),
        last_activity_ms=int(meta["lastActivity"]),
        conversation_count=int(meta["conversationCount"]),
        expires_at_ms=int(meta["expiresAt"]),
        inactive_at_ms=int(meta["inactiveAt"]),
        backend="redis",
    )


class RedisSessionStore:
    """Sessions in Redis, shared by every server process using the same Redis."""

    backend: Backend = "redis"

    def __init__(
        self,
        redis: aioredis.Redis,
        limits: SessionLimits,
        *,
        retention_ms: int,
        grace_ms: int = 60_000,
    ) -> None:
        self.redis = redis
        self.limits = limits
        self.retention_ms = retention_ms
        self.grace_ms = grace_ms
        self._get_or_start = redis.register_script(_GET_OR_START)
        self._begin_turn = redis.register_script(_BEGIN_TURN)
        self._record_turn = redis.register_script(_RECORD_TURN)
        self._end = redis.register_script(_END)
        self._sweep = redis.register_script(_SWEEP)
        self._unlock = redis.register_script(_UNLOCK)

    def _start_args(self, user_id: str, now_ms: int) -> list[Any]:
        return [
            keys.PREFIX,
            user_id,
            now_ms,
            self.limits.duration_ms,
            self.limits.inactivity_ms,
            self.grace_ms,
            keys.EXPIRES_AT_FIELD,
        ]

    async def get_or_start(self, user_id: str, now_ms: int) -> Session:
        session_id, meta = await self._get_or_start(
            keys=[keys.user_active(user_id), keys.DEADLINES],
            args=self._start_args(user_id, now_ms),
        )
        return _session(session_id, meta)

    async def begin_turn(
        self, user_id: str, token: str, lock_ms: int, now_ms: int
    ) -> Session | None:
        reply = await self._begin_turn(
            keys=[keys.user_active(user_id), keys.DEADLINES, keys.user_lock(user_id)],
            args=[*self._start_args(user_id, now_ms), token, lock_ms],
        )
        if not reply:
            return None
        session_id, meta = reply
        return _session(session_id, meta)

    async def get(self, session_id: str) -> Session | None:
        meta = await self.redis.hgetall(keys.session_meta(session_id))
        if not meta:
            return None
        flat = [item for pair in meta.items() for item in pair]
        return _session(session_id, flat)

    async def active(self, user_id: str) -> Session | None:
        session_id = await self.redis.get(keys.user_active(user_id))
        return await self.get(_decode(session_id)) if session_id else None

    async def record_turn(
        self,
        session_id: str,
        now_ms: int,
        conversation_count: int,
        *,
        unlock: tuple[str, str] | None = None,
    ) -> Session | None:
        keys_ = [keys.session_meta(session_id), keys.DEADLINES]
        args: list[Any] = [session_id, now_ms, conversation_count, self.limits.inactivity_ms]
        if unlock is not None:
            user_id, token = unlock
            keys_.append(keys.user_lock(user_id))
            args.append(token)
        meta = await self._record_turn(keys=keys_, args=args)
        return _session(session_id, meta) if meta else None

    async def end(self, session_id: str, reason: EndReason, now_ms: int) -> EndedSession | None:
        record = await self._end(args=[keys.PREFIX, session_id, reason, now_ms, self.retention_ms])
        return EndedSession.from_json(record) if record else None

    async def sweep(self, now_ms: int) -> list[EndedSession]:
        ended: list[EndedSession] = []
        while True:
            seen, records = await self._sweep(
                keys=[keys.DEADLINES], args=[keys.PREFIX, now_ms, self.retention_ms, SWEEP_BATCH]
            )
            ended += [EndedSession.from_json(r) for r in records]
            if seen < SWEEP_BATCH:
                return ended

    async def ended(self, user_id: str, limit: int) -> list[EndedSession]:
        raw = await self.redis.hvals(keys.user_ended(user_id))
        records = sorted(map(EndedSession.from_json, raw), key=lambda r: -r.endTime)
        return records[: max(limit, 1)]

    async def ended_record(self, session_id: str) -> EndedSession | None:
        try:
            user_id = SessionId.parse(session_id).user_id
        except InvalidIdError:
            return None
        raw = await self.redis.hget(keys.user_ended(user_id), session_id)
        return EndedSession.from_json(raw) if raw else None

    async def try_lock(self, user_id: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.redis.set(keys.user_lock(user_id), token, nx=True, px=ttl_ms))

    async def unlock(self, user_id: str, token: str) -> None:
        await self._unlock(keys=[keys.user_lock(user_id)], args=[token])

    async def note_cleanup(self, now_ms: int, duration_ms: float, ended: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.STATS, "cleanup:runs", 1)
            pipe.hset(
                keys.STATS,
                mapping={
                    "cleanup:lastRun": now_ms,
                    "cleanup:lastDurationMs": round(duration_ms, 3),
                    "cleanup:lastEnded": ended,
                },
            )
            await pipe.execute()

    async def stats(self) -> dict[str, Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STATS)
            pipe.zcard(keys.DEADLINES)
            raw, active = await pipe.execute()
        counters = {_decode(k): _decode(v) for k, v in raw.items()}
        return _stats(counters, active)


def _stats(counters: dict[str, str], active: int) -> dict[str, Any]:
    """The statistics object both stores report (counters named as in the Redis hash)."""
    last_run = counters.get("cleanup:lastRun")
    return {
        "activeSessions": active,
        "endedByReason": {r: int(counters.get(f"ended:{r}", 0)) for r in END_REASONS},
        "cleanup": {
            "runs": int(counters.get("cleanup:runs", 0)),
            "lastRun": iso(int(last_run)) if last_run else None,
            "lastDurationMs": float(counters.get("cleanup:lastDurationMs", 0)),
            "lastEnded": int(counters.get("cleanup:lastEnded", 0)),
        },
    }
