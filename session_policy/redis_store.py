"""The session index on Redis: Lua scripts make every state change atomic and exactly-once.

Layout (see `keys.py`): a meta hash per active session, the user's active-session pointer,
turn lock and queue of messages waiting for it (`DOUBLE_TEXTING=enqueue`), a per-user hash
of ended-session records whose fields expire after the retention (hash-field TTLs, Redis
7.4+), and cleanup's index: a sorted set of deadlines per shard of users, never `KEYS` or
`SCAN`. Once a session ends, no key named after it remains.
Every key of an active session expires by itself shortly after the session's hard deadline
(a grace so that cleanup can still write the ended record, and a turn whose message arrived
before the deadline can finish in its thread), which is the backstop when no server runs.

Runs on one Redis or a Redis Cluster: every script works in one shard, whose keys share a
hash slot, and declares every key it touches in its KEYS (see `_SHARD`), which is what keeps
it atomic while the slot is moved between cluster nodes.

The deadlines are computed in Python (`SessionLimits`, the one definition of when a session
ends) and stored in the meta as data: `endsAt` and `endsBy`, the first deadline and the
reason it ends the session by. The scripts only compare `endsAt` with the time.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from session_policy import keys
from session_policy.ids import InvalidIdError, SessionId, new_session_id
from session_policy.models import (
    END_REASONS,
    Backend,
    EndedSession,
    EndReason,
    Session,
    SessionLimits,
    first_deadline,
    iso,
)
from session_policy.redis_client import RedisClient
from session_policy.redis_errors import classify

log = logging.getLogger(__name__)

# Every script: KEYS[1] the shard's deadline index, KEYS[2] its ended counts, then every
# other key it may touch; ARGV[1..6] the shard's name patterns (keys.shard_patterns: meta,
# thread, active, ended, lock, queue).
# Why every key is declared: while a slot moves between cluster nodes, Redis checks only a
# script's KEYS (it runs the script where they all are, else answers ASK or TRYAGAIN); a key
# reached only by name inside the script might have moved already and read as missing. So
# `name` refuses an undeclared key (a bug: an error, never a silent miss), and a script that
# learns a key's name from the data (the user's current session) asks for it (`known`).
_SHARD = """
local index, counts = KEYS[1], KEYS[2]
local P = {meta = ARGV[1], thread = ARGV[2], active = ARGV[3], ended = ARGV[4], lock = ARGV[5],
  queue = ARGV[6]}
local declared = {}
for _, key in ipairs(KEYS) do declared[key] = true end
local function known(kind, id) return declared[string.format(P[kind], id)] ~= nil end
local function name(kind, id)
  local key = string.format(P[kind], id)
  if not declared[key] then error('undeclared key ' .. key) end
  return key
end

local QUEUE_NEXT = %s

-- Ends a session once: {GONE} if it ended already; with reason "", only if it is due by
-- `now` ({NOT_DUE} otherwise, its index entry set right) and for the reason in its meta;
-- with `unless_busy`, not while its user's turn runs ({BUSY}, out of this sweep's range).
local function end_session(sid, now, retention, reason, unless_busy)
  local meta = name('meta', sid)
  local m = redis.call('HMGET', meta, 'userId', 'startTime', 'conversationCount', 'endsAt',
    'endsBy')
  if not m[1] then
    redis.call('ZREM', index, sid)  -- its keys already expired by TTL
    return {0}
  end
  if reason == '' then
    if now < tonumber(m[4]) then
      redis.call('ZADD', index, m[4], sid)
      return {1}
    end
    reason = m[5]
  end
  if unless_busy and redis.call('EXISTS', name('lock', m[1])) == 1 then
    redis.call('ZADD', index, now + 1, sid)
    return {2}
  end
  redis.call('DEL', meta, name('thread', sid))
  redis.call('ZREM', index, sid)
  local active = name('active', m[1])
  if redis.call('GET', active) == sid then redis.call('DEL', active) end
  local record = cjson.encode({sessionId = sid, userId = m[1], startTime = tonumber(m[2]),
    endTime = now, conversationCount = tonumber(m[3]), endReason = reason})
  local ended = name('ended', m[1])
  redis.call('HSET', ended, sid, record)
  redis.call('HPEXPIRE', ended, retention, 'FIELDS', 1, sid)
  redis.call('PEXPIRE', ended, retention)
  redis.call('HINCRBY', counts, 'ended:' .. reason, 1)
  return {3, record}
end

-- Deletes a turn lock only if this token still holds it (1 if it did, else 0).
local function release(lock, token)
  if redis.call('GET', lock) == token then return redis.call('DEL', lock) end
  return 0
end

-- Takes the user's turn lock for `token` (true; kept if it holds it already, as on a retry).
-- With queue_ms 0 only a free lock is taken. With queue_ms > 0 the user's queue decides:
-- the lock goes to the waiter with the lowest ticket, and a caller that can't have it now
-- keeps its place (a newcomer takes the next ticket, at the back) for queue_ms; a waiter
-- that stops asking (its process died) drops out when its field expires.
local function take_lock(user, token, ttl, queue_ms)
  local lock = name('lock', user)
  local holder = redis.call('GET', lock)
  if holder == token then return true end
  if queue_ms == 0 then
    if holder then return false end
    redis.call('SET', lock, token, 'PX', ttl)
    return true
  end
  local queue = name('queue', user)
  local mine = redis.call('HGET', queue, token)
  if not holder then
    local ahead = false
    local waiting = redis.call('HGETALL', queue)
    for i = 1, #waiting, 2 do
      local other = waiting[i]
      if other ~= QUEUE_NEXT and other ~= token
        and (not mine or tonumber(waiting[i + 1]) < tonumber(mine)) then
        ahead = true
        break
      end
    end
    if not ahead then
      if mine then redis.call('HDEL', queue, token) end
      redis.call('SET', lock, token, 'PX', ttl)
      return true
    end
  end
  if not mine then
    redis.call('HSET', queue, token, redis.call('HINCRBY', queue, QUEUE_NEXT, 1))
  end
  redis.call('HPEXPIRE', queue, queue_ms, 'FIELDS', 1, token)
  -- The key (and its ticket counter) lives as long as its longest-lived waiter.
  redis.call('PEXPIRE', queue, queue_ms)
  return false
end
"""
_SHARD %= repr(keys.QUEUE_NEXT)  # a Lua string literal, as Python writes it
_GONE, _NOT_DUE, _BUSY, _ENDED = 0, 1, 2, 3
_EXISTING, _STARTED, _ID_TAKEN, _NEEDS_KEY = 0, 1, 2, 3

# KEYS: index, counts, the user's keys (`_user_keys`), the new session's meta and, if the
# caller guesses one, the current session's meta.
# ARGV[7] user, [8] new session id, [9] its first deadline (endsAt), [10] keepUntil, then the
# new session's meta as field, value pairs; with a lock, its token, TTL and queue time (ms)
# come last.
# Returns {session id, meta, _EXISTING or _STARTED}; {"", {}, _ID_TAKEN}: that id is an ended
# session's (same millisecond), try the next one; {current id, {}, _NEEDS_KEY}: the user's
# current session is another than the one guessed, call again declaring its meta (before
# anything was written).
_GET_OR_START_FUNCTION = """
local function unknown_current(user)
  local current = redis.call('GET', name('active', user))
  if current and not known('meta', current) then return {current, {}, 3} end
  return nil
end

local function get_or_start(fields)
  local user, sid, keep = ARGV[7], ARGV[8], ARGV[10]
  local active = name('active', user)
  local current = redis.call('GET', active)
  if current then
    local meta = redis.call('HGETALL', name('meta', current))
    if #meta > 0 then return {current, meta, 0} end
    redis.call('ZREM', index, current)
  end
  if redis.call('HEXISTS', name('ended', user), sid) == 1 then return {'', {}, 2} end
  local meta = name('meta', sid)
  redis.call('HSET', meta, unpack(fields))
  redis.call('PEXPIREAT', meta, keep)
  redis.call('SET', active, sid, 'PXAT', keep)
  redis.call('ZADD', index, ARGV[9], sid)
  return {sid, redis.call('HGETALL', meta), 1}
end
"""
_GET_OR_START = (
    _SHARD
    + _GET_OR_START_FUNCTION
    + "return unknown_current(ARGV[7]) or get_or_start({unpack(ARGV, 11)})\n"
)

# As _GET_OR_START, after taking the user's turn lock (`take_lock`). False when the lock
# is not this turn's (yet).
_BEGIN_TURN = (
    _SHARD
    + _GET_OR_START_FUNCTION
    + """
local token, ttl, queue_ms = ARGV[#ARGV - 2], ARGV[#ARGV - 1], tonumber(ARGV[#ARGV])
local ask = unknown_current(ARGV[7])
if ask then return ask end
if not take_lock(ARGV[7], token, ttl, queue_ms) then return false end
return get_or_start({unpack(ARGV, 11, #ARGV - 3)})
"""
)

# KEYS: index, counts, the user's keys. ARGV[7] user, [8] token, [9] lock TTL (ms), [10] queue
# time (ms): `take_lock` alone.
_TRY_LOCK = _SHARD + "return take_lock(ARGV[7], ARGV[8], ARGV[9], tonumber(ARGV[10]))\n"


# KEYS: index, counts, the session's meta, its user's lock.
# ARGV[7] session id, [8] user, [9] lock token ("": none to release), [10] its new first
# deadline (endsAt), then the meta's new field, value pairs. Nil if the session ended.
_RECORD_TURN = (
    _SHARD
    + """
if ARGV[9] ~= '' then release(name('lock', ARGV[8]), ARGV[9]) end
local meta = name('meta', ARGV[7])
if redis.call('EXISTS', meta) == 0 then return nil end
redis.call('HSET', meta, unpack(ARGV, 11))
redis.call('ZADD', index, ARGV[10], ARGV[7])
return redis.call('HGETALL', meta)
"""
)

# KEYS: index, counts, the session's keys (`_session_keys`). ARGV[7] session id, [8] now,
# [9] retention ms, [10] reason.
_END = (
    _SHARD + "return end_session(ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10], false)\n"
)

# KEYS: index, counts, the keys of every session to end (`_session_keys`, each once).
# ARGV[7] now, [8] retention ms, [9...] the ids of the shard's sessions the index showed due
# (read just before: the script checks each again). Returns the records of those it ended.
_SWEEP = (
    _SHARD
    + """
local now, retention = tonumber(ARGV[7]), tonumber(ARGV[8])
local out = {}
for i = 9, #ARGV do
  local result = end_session(ARGV[i], now, retention, '', true)
  if result[1] == 3 then table.insert(out, result[2]) end
end
return out
"""
)

# KEYS: index, counts, the user's lock. ARGV[7] user, [8] token.
_UNLOCK = _SHARD + "return release(name('lock', ARGV[7]), ARGV[8])\n"

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


def _changing_fields(session: Session) -> list[Any]:
    """The meta fields a turn changes, as field, value pairs: its deadlines among them, as
    data for the scripts (`endsAt`, `endsBy`: the first deadline and its reason)."""
    ends_at, ends_by = first_deadline(session.expires_at_ms, session.inactive_at_ms)
    return [
        "lastActivity",
        session.last_activity_ms,
        "conversationCount",
        session.conversation_count,
        "expiresAt",
        session.expires_at_ms,
        "inactiveAt",
        session.inactive_at_ms,
        "endsAt",
        ends_at,
        "endsBy",
        ends_by,
    ]


def _user_of(session_id: str) -> str | None:
    try:
        return SessionId.parse(session_id).user_id
    except InvalidIdError:
        return None


def _user_keys(user_id: str) -> list[str]:
    """The keys of a user a script may touch: active pointer, ended records, lock, queue."""
    return [
        keys.user_active(user_id),
        keys.user_ended(user_id),
        keys.user_lock(user_id),
        keys.user_queue(user_id),
    ]


def _session_keys(session_id: str, user_id: str) -> list[str]:
    """The keys ending a session may touch: its meta and thread, its user's active pointer,
    ended records and lock."""
    return [
        keys.session_meta(session_id),
        keys.thread(session_id),
        keys.user_active(user_id),
        keys.user_ended(user_id),
        keys.user_lock(user_id),
    ]


class RedisSessionStore:
    """Sessions in Redis (one Redis or a Redis Cluster), shared by every server process
    using it."""

    backend: Backend = "redis"

    # Users whose current session this process last saw, to declare its meta in the start
    # script's KEYS the first time; a wrong or missing guess costs one more call. Bounded.
    KNOWN_SESSIONS = 100_000

    def __init__(
        self,
        redis: RedisClient,
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
        self._try_lock = redis.register_script(_TRY_LOCK)
        self._current: dict[str, str] = {}

    @staticmethod
    def _shard(shard: int, *touched: str) -> tuple[list[str], list[Any]]:
        """KEYS (the shard's index and counts, then `touched`) and the ARGV head of every
        script working in `shard`."""
        index = [keys.deadlines(shard), keys.ended_counts(shard)]
        return [*index, *touched], keys.shard_patterns(shard)

    # --- starting -----------------------------------------------------------------------

    async def _started(self, user_id: str, now_ms: int, lock: list[Any] | None) -> Session | None:
        """Get or start the user's session (taking the turn lock first with `lock`)."""
        shard = keys.shard_of(user_id)
        start = now_ms
        guess = self._current.get(user_id)
        while True:
            new = self.limits.new_session(new_session_id(user_id, start), user_id, start, "redis")
            keep_until = new.expires_at_ms + self.grace_ms
            touched = [*_user_keys(user_id), keys.session_meta(new.session_id)]
            if guess is not None and guess != new.session_id:
                touched.append(keys.session_meta(guess))
            shard_keys, head = self._shard(shard, *touched)
            args = [
                *head,
                user_id,
                new.session_id,
                new.next_deadline_ms,
                keep_until,
                keys.KEEP_UNTIL_FIELD,
                keep_until,
                "userId",
                user_id,
                "startTime",
                start,
                *_changing_fields(new),
            ]
            if lock is None:
                reply = await self._get_or_start(keys=shard_keys, args=args)
            else:
                reply = await self._begin_turn(keys=shard_keys, args=[*args, *lock])
            if not reply:
                return None  # locked
            session_id, meta, started = reply
            if int(started) == _NEEDS_KEY:
                guess = _decode(session_id)
                continue
            if int(started) == _ID_TAKEN:
                start += 1  # that id belongs to an ended session of the same millisecond
                continue
            self._remember(user_id, _decode(session_id))
            return _session(session_id, meta)

    def _remember(self, user_id: str, session_id: str) -> None:
        if len(self._current) >= self.KNOWN_SESSIONS:
            self._current.clear()
        self._current[user_id] = session_id

    async def get_or_start(self, user_id: str, now_ms: int) -> Session:
        session = await self._started(user_id, now_ms, None)
        assert session is not None  # only a lock can refuse
        return session

    async def begin_turn(
        self, user_id: str, token: str, lock_ms: int, now_ms: int, *, queue_ms: int = 0
    ) -> Session | None:
        return await self._started(user_id, now_ms, [token, lock_ms, queue_ms])

    # --- reading --------------------------------------------------------------------------

    async def get(self, session_id: str) -> Session | None:
        meta = await self.redis.hgetall(keys.session_meta(session_id))
        if not meta:
            return None
        flat = [item for pair in meta.items() for item in pair]
        return _session(session_id, flat)

    async def active(self, user_id: str) -> Session | None:
        session_id = await self.redis.get(keys.user_active(user_id))
        return await self.get(_decode(session_id)) if session_id else None

    async def ended(self, user_id: str, limit: int) -> list[EndedSession]:
        raw = await self.redis.hvals(keys.user_ended(user_id))
        records = sorted(map(EndedSession.from_json, raw), key=lambda r: -r.endTime)
        return records[: max(limit, 1)]

    async def ended_record(self, session_id: str) -> EndedSession | None:
        user_id = _user_of(session_id)
        if user_id is None:
            return None
        raw = await self.redis.hget(keys.user_ended(user_id), session_id)
        return EndedSession.from_json(raw) if raw else None

    # --- turns ----------------------------------------------------------------------------

    async def record_turn(
        self,
        session: Session,
        now_ms: int,
        conversation_count: int,
        *,
        unlock: tuple[str, str] | None = None,
    ) -> Session | None:
        updated = self.limits.after_turn(session, now_ms, conversation_count)
        shard_keys, head = self._shard(
            keys.shard_of(session.user_id),
            keys.session_meta(session.session_id),
            keys.user_lock(session.user_id),
        )
        token = ""
        if unlock is not None:
            user_id, token = unlock
            assert user_id == session.user_id, "a turn lock is the session's user's"
        args = [
            *head,
            session.session_id,
            session.user_id,
            token,
            updated.next_deadline_ms,
            *_changing_fields(updated),
        ]
        meta = await self._record_turn(keys=shard_keys, args=args)
        return _session(session.session_id, meta) if meta else None

    async def try_lock(self, user_id: str, token: str, ttl_ms: int, *, queue_ms: int = 0) -> bool:
        shard_keys, head = self._shard(
            keys.shard_of(user_id), keys.user_lock(user_id), keys.user_queue(user_id)
        )
        args = [*head, user_id, token, ttl_ms, queue_ms]
        return bool(await self._try_lock(keys=shard_keys, args=args))

    async def leave_queue(self, user_id: str, token: str) -> None:
        await self.redis.hdel(keys.user_queue(user_id), token)

    async def unlock(self, user_id: str, token: str) -> None:
        shard_keys, head = self._shard(keys.shard_of(user_id), keys.user_lock(user_id))
        await self._unlock(keys=shard_keys, args=[*head, user_id, token])

    # --- ending ---------------------------------------------------------------------------

    async def end(self, session_id: str, reason: EndReason, now_ms: int) -> EndedSession | None:
        user_id = _user_of(session_id)
        if user_id is None:
            return None
        shard_keys, head = self._shard(keys.shard_of(user_id), *_session_keys(session_id, user_id))
        reply = await self._end(
            keys=shard_keys, args=[*head, session_id, now_ms, self.retention_ms, reason]
        )
        return EndedSession.from_json(reply[1]) if int(reply[0]) == _ENDED else None

    async def sweep(self, now_ms: int) -> list[EndedSession]:
        """End every session whose duration or inactivity deadline has passed: every shard
        of the index, in batches; per batch one read of the due ids and one script that
        checks and ends them (declaring their keys), each shard's in one pipeline."""
        ended: list[EndedSession] = []
        shards = list(range(keys.SHARDS))
        while shards:
            async with self.redis.pipeline(transaction=False) as pipe:
                for shard in shards:
                    pipe.zrangebyscore(keys.deadlines(shard), "-inf", now_ms, 0, SWEEP_BATCH)
                due: list[list[bytes]] = await pipe.execute()
            batches = [
                (shard, [_decode(i) for i in ids])
                for shard, ids in zip(shards, due, strict=True)
                if ids
            ]
            calls = [self._sweep_call(shard, ids, now_ms) for shard, ids in batches]
            for (shard, ids), reply in zip(
                batches, await self._run(self._sweep, calls), strict=True
            ):
                if isinstance(reply, Exception):
                    problem = classify(reply)
                    if problem is None or problem.kind != "TRYAGAIN":
                        raise reply
                    # Its slot is moving between cluster nodes: the next run sweeps it.
                    log.info("cleanup: shard %d skipped this run (%s)", shard, reply)
                    ids.clear()
                else:
                    ended += [EndedSession.from_json(record) for record in reply]
            shards = [shard for shard, ids in batches if len(ids) == SWEEP_BATCH]
        return ended

    def _sweep_call(self, shard: int, ids: list[str], now_ms: int) -> tuple[list[str], list[Any]]:
        touched: dict[str, None] = {}  # each key once, in order
        for session_id in ids:
            user_id = _user_of(session_id)
            # Not a session id: no key is named after it; `end_session` drops it from the index.
            if user_id is not None:
                touched.update(dict.fromkeys(_session_keys(session_id, user_id)))
            else:
                touched[keys.shard_patterns(shard)[0] % session_id] = None
        shard_keys, head = self._shard(shard, *touched)
        return shard_keys, [*head, now_ms, self.retention_ms, *ids]

    async def _run(
        self, script: AsyncScript, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """Run `script` once per (keys, args) in one pipeline; each call's reply or error.
        A server that lost the script (restarted, failed over) gets it again."""
        if not calls:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for call_keys, args in calls:
                # EVALSHA by name: redis-py blocks `evalsha` in cluster pipelines, not the
                # command (routed by its first key like any other).
                pipe.execute_command("EVALSHA", script.sha, len(call_keys), *call_keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                call_keys, args = calls[i]
                try:
                    replies[i] = await script(keys=call_keys, args=args)
                except Exception as error:
                    replies[i] = error
        return replies

    # --- statistics -----------------------------------------------------------------------

    async def note_cleanup(self, now_ms: int, duration_ms: float, ended: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.CLEANUP_STATS, "cleanup:runs", 1)
            pipe.hset(
                keys.CLEANUP_STATS,
                mapping={
                    "cleanup:lastRun": now_ms,
                    "cleanup:lastDurationMs": round(duration_ms, 3),
                    "cleanup:lastEnded": ended,
                },
            )
            await pipe.execute()

    async def active_count(self) -> int:
        """Sessions in the index (those whose keys expired by TTL until a sweep sees them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(keys.SHARDS):
                pipe.zcard(keys.deadlines(shard))
            counts: list[int] = await pipe.execute()
        return sum(counts)

    async def sample(self, size: int) -> list[str]:
        """Up to `size` random active session ids, from every shard of the index."""
        per_shard = -(-size // keys.SHARDS)
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(keys.SHARDS):
                pipe.zrandmember(keys.deadlines(shard), per_shard)
            replies: list[list[bytes]] = await pipe.execute()
        return [_decode(m) for members in replies for m in members or []][:size]

    async def stats(self) -> dict[str, Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.CLEANUP_STATS)
            for shard in range(keys.SHARDS):
                pipe.hgetall(keys.ended_counts(shard))
            cleanup, *shards = await pipe.execute()
        counters = {_decode(k): _decode(v) for k, v in cleanup.items()}
        for counts in shards:
            for field, value in counts.items():
                name = _decode(field)
                counters[name] = str(int(counters.get(name, 0)) + int(value))
        return _stats(counters, await self.active_count())


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
