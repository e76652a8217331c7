"""`RedisSessionSaver`: a LangGraph checkpointer keeping each thread in ONE Redis hash.

Why our own saver: the stock `langgraph-checkpoint-redis` savers spread a thread over many
keys and search indexes, can't promise that a late write doesn't bring a deleted thread
back, and store the whole `messages` list again at every super-step (memory quadratic in
turns). Here a thread is one hash, `keys.thread(thread_id)`:

* deleting a thread is one `DEL`, and one `PEXPIREAT` bounds the life of all its data;
* every write is ONE Lua script (one round trip) that can first check the session's guard
  key (`keys.session_meta(thread_id)`): no session, no write; with a session, the thread
  key expires when the session's keys do (`keys.EXPIRES_AT_FIELD`, epoch ms: the hard
  deadline plus the cleanup grace);
* a list channel (`messages` with `add_messages`) is stored as deltas: each version keeps
  only the items appended since the version it extends, so memory grows linearly;
* reading a checkpoint (latest or by id) is ONE Lua script that follows the delta chains
  server side and returns every piece; the client joins them into one msgpack document.
  For session threads the saver also keeps the latest checkpoint it stored or read in
  memory (`checkpoint_cache`): the script then only confirms it is still the stored one,
  and a turn does not deserialize its whole conversation again.

Layout of the hash. Field names use NUL as separator (namespaces and channel names may hold
`:` and `|`, never NUL); `<ns>` is "" for the root graph; ids (`<cid>`, parent and task ids)
are stored as 0xFF + 16 bytes when they are canonical UUIDs (LangGraph's), else as text.

``l\\0<ns>``
    Id of the newest checkpoint of the namespace (the greatest id, as in `InMemorySaver`).

``c\\0<ns>\\0<cid>``
    The checkpoint record: ``frame(head)`` then the pending writes stored against the
    checkpoint, one group per task: ``frame(task id) frame(task path) frame(entries)``,
    ``entries = (frame(idx) frame(payload))*``.
    The head is ``frame(versions) flag body``. `versions` lists ``frame(channel)
    frame(version key)`` for every channel of `channel_versions`, in clear so that the read
    script knows which pieces to fetch. `body` is ``frame(parent id) frame(type)
    frame(checkpoint) frame(type) frame(metadata)``, deflated (flag `z`) with a dictionary made
    of typical keys plus `versions` (the version strings of `versions_seen` mostly repeat
    them), else raw (flag `r`). The checkpoint is serialized without `id`,
    `channel_versions` and `channel_values`, which are rebuilt on read.
    Writes can arrive before their checkpoint (LangGraph saves both in the background), so a
    record may have an empty head: it is not a checkpoint (yet).

``v\\0<ns>\\0<version key>``
    The channel values created with that version, ``(frame(channel) frame(piece))*``.
    LangGraph gives every channel a super-step writes the same version, so this is usually
    one field per checkpoint.

Pieces (channel values)::

    F frame(chain) frame(items digest) frame(type) frame(count) blob    a whole value
    D frame(chain) frame(items digest) frame(base version key) frame(count) blob

For a list (a msgpack array) `blob` holds only the encodings of its `count` items, without
the array header; `D` holds the items appended to the list of the base version (same
channel). A msgpack array is its header followed by its items, so ``header(total) + items of
F + items of each D, oldest first`` is exactly the serialized list: one `loads_typed` rebuilds
it. For any other value `count` is empty and `blob` is the serialized value.
`items digest` is a hash of the (uncompressed) items; `chain` identifies the whole list:
the items digest for F, hash(base chain + items digest) for D. The put script stores a delta
only if its base exists with the chain it was computed from, so a delta never lands on top
of other bytes than the ones it extends.
Pieces are write-once: a version names one value (our versions carry a random part, so two
branches forked from one checkpoint never share one); this keeps deltas and references valid
for the life of the thread. A channel without a value ("empty") stores nothing: absence reads
the same.

Pending write payloads::

    V frame(channel) frame(type) frame(items digest) frame(count) blob   the value
    R frame(channel) frame(version key)                                  see below

A node's write to `messages` holds the very messages the next checkpoint appends: keeping
both copies would double the memory of a conversation. So a list write whose items digest
equals the one of a piece of the same channel becomes a reference ``R`` to that piece. Either
script does it, whichever runs second: `put` for the writes already stored against its
parent, `put_writes` for the piece the saver just stored from this checkpoint's writes (the
saver remembers which). Equal digests (64-bit blake2b) mean equal item bytes, so the
reference reads back exactly the value that was written; a write serialized differently
(a message given its id after the write was saved) simply stays literal.

`blob` is ``z`` + raw deflate with a fixed dictionary of LangChain message boilerplate
(module and class names, field names...), or ``r`` + the bytes when that is not smaller.
Messages are mostly that boilerplate and short texts: it halves them, for ~20 µs per written
piece and a few µs per piece read. Frames are a base-128 varint length then the bytes.

History: a guarded thread (a session's) keeps only its latest checkpoint per namespace
(`keep_history`): the put script deletes the parent's record, pending writes included, and
the non-list values of the parent's channels that changed (list pieces stay: the delta
chain of the new value runs through them). A session's thread is only ever read at its
latest checkpoint, and the per-checkpoint records (versions, metadata, the writes) would
otherwise weigh more than the messages themselves (~0.5 KB per super-step). Writes that
arrive for a checkpoint already replaced are dropped: resuming starts from the latest one.
Since the next checkpoint deletes them anyway, a task's writes on such a thread wait for
it (`WRITES_GRACE_S` at most, in `aput_writes`) and are not sent at all when it comes:
LangGraph saves it as soon as the step's tasks are done, so in the usual one-task step
that saves one round trip per step. Special writes (errors, interrupts), which no
checkpoint follows, go at once, with any writes waiting for the same checkpoint. A thread
whose checkpoints carry DeltaChannel counters (LangGraph's beta channel rebuilt from the
writes of the parent chain) is never pruned and its writes never wait.

Delta detection is by identity: the saver remembers, per thread (LRU), namespace and list
channel, the items of the last version it wrote and of the last ones reads returned, as weak
references (the saver keeps no conversation alive; a run holds its objects while it needs
them). When a new value starts with the very same objects, only the new ones are serialized.
This assumes, like LangGraph, that a value is not mutated in place once checkpointed: a node
that edits a message already in the state and returns that same object would get its edit
saved by `InMemorySaver` (which re-serializes the whole list) but not here, where the stored
bytes stay; replacing a message with a new object with the same id, as LangGraph recommends,
works (the list no longer extends the old one, so it is stored whole). If the remembered
version is gone from Redis (thread deleted or expired meanwhile, another process...), the put
script refuses the delta and the saver sends full values: a second round trip, then only.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import random
import re
import threading
import weakref
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self, cast

import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from session_policy import keys
from session_policy.checkpoint_cache import (
    DEFAULT_HOT_THREADS,
    HotCheckpoint,
    HotCheckpoints,
    copy_checkpoint,
)

log = logging.getLogger(__name__)

__all__ = ["CorruptThreadError", "RedisSessionSaver"]

# Threads whose last list values are remembered for delta detection.
DEFAULT_DELTA_CACHE_THREADS = 1024
# SCAN page size when listing every thread.
_SCAN_COUNT = 500
# Pruned threads: how long a task's writes wait for the checkpoint that replaces theirs
# (LangGraph saves it as soon as the step's other tasks are done) before being stored.
WRITES_GRACE_S = 0.5
# Pruned threads: checkpoints recently replaced by this saver (writes for them are moot).
_REPLACED_MEMORY = 4096
# Threads remembered as using, or not using, LangGraph's DeltaChannel (beta): it rebuilds
# a value from the writes along the parent chain, so such a thread is never pruned.
_THREAD_KINDS_MEMORY = 4096
_DELTA_COUNTERS = "counters_since_delta_snapshot"

# Script replies.
_DROPPED = 0  # the guard key is gone: nothing was written
_APPLIED = 1
_STALE_BASE = 2  # a delta's base is not stored (any more): send full values
_APPLIED_NO_DEADLINE = 3  # guard key present but without a usable deadline

# --------------------------------------------------------------------------- Lua

# Helpers shared by the scripts: the varint frames described in the module docstring.
_LUA_COMMON = r"""
local function rd(s, p)
  local n, m = 0, 1
  while true do
    local b = string.byte(s, p)
    p = p + 1
    if b < 128 then
      n = n + b * m
      break
    end
    n = n + (b - 128) * m
    m = m * 128
  end
  return string.sub(s, p, p + n - 1), p + n
end

local function fr(x)
  local n = #x
  if n < 128 then return string.char(n) .. x end
  local t = {}
  while n >= 128 do
    t[#t + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  t[#t + 1] = string.char(n)
  return table.concat(t) .. x
end

-- channel -> piece, of a version field (or channel -> version key, of a head's versions)
local function entries(rec)
  local t, p, n = {}, 1, #rec
  while p <= n do
    local ch, piece
    ch, p = rd(rec, p)
    piece, p = rd(rec, p)
    t[ch] = piece
  end
  return t
end

-- the piece of channel `ch` in a version field, copying nothing else
local function find(rec, ch)
  local p, n, len = 1, #rec, #ch
  while p <= n do
    local name
    name, p = rd(rec, p)
    local size, m = 0, 1
    while true do
      local b = string.byte(rec, p)
      p = p + 1
      if b < 128 then
        size = size + b * m
        break
      end
      size = size + (b - 128) * m
      m = m * 128
    end
    if name == ch then return string.sub(rec, p, p + size - 1) end
    p = p + size
  end
  return nil
end

-- the items digest of a piece
local function idigest(piece)
  local _, p = rd(piece, 2)
  return (rd(piece, p))
end

-- byte-wise a > b (encoded checkpoint ids sort as the ids do)
local function gt(a, b)
  local la, lb = #a, #b
  local n = la < lb and la or lb
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return la > lb
end

-- channel and items digest of a literal write payload
local function write_digest(payload)
  local ch, p = rd(payload, 2)
  local _
  _, p = rd(payload, p)
  return ch, (rd(payload, p))
end
"""

# Guard and expiry of the write scripts. KEYS[1] thread, KEYS[2] guard; ARGV[1] "1" =
# guarded, ARGV[2] TTL in ms ("0" = none), ARGV[3] the deadline field of the guard hash.
_LUA_GUARD = r"""
local function guard()
  if ARGV[1] ~= '1' then return true, nil end
  if redis.call('EXISTS', KEYS[2]) == 0 then return false, nil end
  return true, tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '')
end

local function expire(deadline)
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
  if deadline then
    -- a deadline in the past deletes the key: the session is over, so is its thread
    local at = string.format('%.0f', math.floor(deadline))
    if ttl > 0 then
      redis.call('PEXPIREAT', KEYS[1], at, 'LT')
    else
      redis.call('PEXPIREAT', KEYS[1], at)
    end
  end
end

local function applied(deadline)
  if ARGV[1] == '1' and not deadline then return 3 end
  return 1
end
"""

# put: ARGV[4] checkpoint field, [5] latest-pointer field, [6] checkpoint id, [7] checkpoint
# field prefix, [8] parent id or "", [9] version field prefix, [10] head, [11] piece count,
# then per piece: channel, version key, piece, base version key or "", base chain digest;
# last, "1" to prune the parent (latest checkpoint only), else "0".
_PUT_LUA = (
    _LUA_COMMON
    + _LUA_GUARD
    + r"""
local ok, deadline = guard()
if not ok then return {0, 0} end

local vpre = ARGV[9]
local np = tonumber(ARGV[11])
local prune = ARGV[12 + np * 5] == '1'
local raws, parsed = {}, {}
local function version(vk)
  local e = parsed[vk]
  if e == nil then
    local rec = redis.call('HGET', KEYS[1], vpre .. vk)
    raws[vk] = rec or ''
    e = rec and entries(rec) or {}
    parsed[vk] = e
  end
  return e
end

-- 1. every delta extends exactly the stored list it was computed from, or nothing is written
for i = 0, np - 1 do
  local b = 12 + i * 5
  local base = ARGV[b + 3]
  if base ~= '' then
    local piece = version(base)[ARGV[b]]
    if not piece or rd(piece, 2) ~= ARGV[b + 4] then return {2, 0} end
  end
end

-- 2. new pieces (write-once: a stored version keeps its value)
local skipped, stored, appends, order = 0, {}, {}, {}
for i = 0, np - 1 do
  local b = 12 + i * 5
  local ch, vk, piece = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local e = version(vk)
  if e[ch] then
    skipped = skipped + 1
    piece = e[ch]
  else
    e[ch] = piece
    if not appends[vk] then
      appends[vk] = {}
      order[#order + 1] = vk
    end
    local a = appends[vk]
    a[#a + 1] = fr(ch) .. fr(piece)
  end
  local d = idigest(piece)
  if d ~= '' then stored[ch] = {vk, d} end
end
for _, vk in ipairs(order) do
  redis.call('HSET', KEYS[1], vpre .. vk, raws[vk] .. table.concat(appends[vk]))
end

-- 3. the checkpoint, keeping writes that arrived before it
local cur = redis.call('HGET', KEYS[1], ARGV[4])
local rest = ''
if cur then
  local _, p = rd(cur, 1)
  rest = string.sub(cur, p)
end
redis.call('HSET', KEYS[1], ARGV[4], fr(ARGV[10]) .. rest)
local latest = redis.call('HGET', KEYS[1], ARGV[5])
if not latest or gt(ARGV[6], latest) then redis.call('HSET', KEYS[1], ARGV[5], ARGV[6]) end

-- 4a. pruning: the parent goes, with the values only it used (non-list values of its
-- channels that changed; list pieces stay, the new values' delta chains run through them)
if prune and ARGV[8] ~= '' and ARGV[7] .. ARGV[8] ~= ARGV[4] then
  local pfield = ARGV[7] .. ARGV[8]
  local prec = redis.call('HGET', KEYS[1], pfield)
  if prec then
    local phead = rd(prec, 1)
    if phead ~= '' then
      local now = entries((rd(ARGV[10], 1)))
      local drop, dorder = {}, {}
      for ch, vk in pairs(entries((rd(phead, 1)))) do
        if now[ch] ~= vk then
          if not drop[vk] then
            drop[vk] = {}
            dorder[#dorder + 1] = vk
          end
          drop[vk][#drop[vk] + 1] = ch
        end
      end
      for _, vk in ipairs(dorder) do
        local vfield = vpre .. vk
        local rec = redis.call('HGET', KEYS[1], vfield)
        if rec then
          local e, changed = entries(rec), false
          for _, ch in ipairs(drop[vk]) do
            local piece = e[ch]
            if piece and string.sub(piece, 1, 1) == 'F' and rd(piece, 2) == '' then
              e[ch] = nil
              changed = true
            end
          end
          if changed then
            local out = {}
            for ch, piece in pairs(e) do out[#out + 1] = fr(ch) .. fr(piece) end
            if #out == 0 then
              redis.call('HDEL', KEYS[1], vfield)
            else
              redis.call('HSET', KEYS[1], vfield, table.concat(out))
            end
          end
        end
      end
    end
    redis.call('HDEL', KEYS[1], pfield)
  end
end

-- 4b. the parent's writes whose items a new piece holds become references to it
if not prune and ARGV[8] ~= '' and next(stored) then
  local pfield = ARGV[7] .. ARGV[8]
  local prec = redis.call('HGET', KEYS[1], pfield)
  if prec then
    local head, p = rd(prec, 1)
    local out, changed, n = {fr(head)}, false, #prec
    while p <= n do
      local tid, path, ents
      tid, p = rd(prec, p)
      path, p = rd(prec, p)
      ents, p = rd(prec, p)
      local eo, q, m = {}, 1, #ents
      while q <= m do
        local idx, payload
        idx, q = rd(ents, q)
        payload, q = rd(ents, q)
        if string.sub(payload, 1, 1) == 'V' then
          local ch, d = write_digest(payload)
          local s = stored[ch]
          if s and d ~= '' and d == s[2] then
            payload = 'R' .. fr(ch) .. fr(s[1])
            changed = true
          end
        end
        eo[#eo + 1] = fr(idx) .. fr(payload)
      end
      out[#out + 1] = fr(tid) .. fr(path) .. fr(table.concat(eo))
    end
    if changed then redis.call('HSET', KEYS[1], pfield, table.concat(out)) end
  end
end

expire(deadline)
return {applied(deadline), skipped}
"""
)

# put_writes: ARGV[4] checkpoint field, [5] task id, [6] task path, [7] version field
# prefix, [8] write count, then per write: idx, payload, version key of the piece that may
# hold its items or ""; last: "1" when pruning, the latest-pointer field, the checkpoint id.
# Regular writes (idx >= 0) are insert-if-absent per (task, idx); special ones (negative
# idx, `WRITES_IDX_MAP`) overwrite, as in `InMemorySaver`. When pruning, writes for a
# checkpoint older than the latest one, which is gone, are dropped.
_PUT_WRITES_LUA = (
    _LUA_COMMON
    + _LUA_GUARD
    + r"""
local ok, deadline = guard()
if not ok then return 0 end

local rec = redis.call('HGET', KEYS[1], ARGV[4])
if not rec then
  local tail = 9 + 3 * tonumber(ARGV[8])
  if ARGV[tail] == '1' then
    local latest = redis.call('HGET', KEYS[1], ARGV[tail + 1])
    if latest and gt(latest, ARGV[tail + 2]) then return applied(deadline) end
  end
  rec = fr('')
end
local tid = ARGV[5]
local _, p = rd(rec, 1)
local n = #rec
local gs, ge, ents = nil, nil, ''
while p <= n do
  local s, t, e = p, nil, nil
  t, p = rd(rec, p)
  _, p = rd(rec, p)
  e, p = rd(rec, p)
  if t == tid then
    gs, ge, ents = s, p, e
    break
  end
end

local idxs, vals = {}, {}
local q, m = 1, #ents
while q <= m do
  local idx, payload
  idx, q = rd(ents, q)
  payload, q = rd(ents, q)
  idxs[#idxs + 1] = idx
  vals[idx] = payload
end

local function shared(payload, vk)
  -- a reference when the piece `vk` of the channel holds exactly these items
  if vk == '' then return payload end
  local ch, d = write_digest(payload)
  if d == '' then return payload end
  local rec = redis.call('HGET', KEYS[1], ARGV[7] .. vk)
  local piece = rec and entries(rec)[ch]
  if piece and idigest(piece) == d then return 'R' .. fr(ch) .. fr(vk) end
  return payload
end

local changed = false
for i = 0, tonumber(ARGV[8]) - 1 do
  local b = 9 + 3 * i
  local idx = ARGV[b]
  if vals[idx] == nil then
    idxs[#idxs + 1] = idx
    vals[idx] = shared(ARGV[b + 1], ARGV[b + 2])
    changed = true
  elseif tonumber(idx) < 0 then
    vals[idx] = shared(ARGV[b + 1], ARGV[b + 2])
    changed = true
  end
end
if changed then
  local eo = {}
  for _, idx in ipairs(idxs) do eo[#eo + 1] = fr(idx) .. fr(vals[idx]) end
  local group = fr(tid) .. fr(ARGV[6]) .. fr(table.concat(eo))
  if gs then
    rec = string.sub(rec, 1, gs - 1) .. group .. string.sub(rec, ge)
  else
    rec = rec .. group
  end
  redis.call('HSET', KEYS[1], ARGV[4], rec)
end
expire(deadline)
return applied(deadline)
"""
)

# get: ARGV[1] checkpoint field prefix, [2] version field prefix, [3] latest-pointer field,
# [4] checkpoint id or "" for the latest, [5] id of the checkpoint the saver holds in memory
# or "", [6] the size of its record then. Returns {id} when that is the one asked for and
# its record is unchanged, else {id, record, chains, refs}: a chain is the channel then its
# pieces, newest first, each after its length (4 bytes, big-endian); a ref is {version key,
# channel, piece} for each pending write stored as a reference.
_GET_LUA = (
    _LUA_COMMON
    + r"""
local cid = ARGV[4]
if cid == '' then
  cid = redis.call('HGET', KEYS[1], ARGV[3])
  if not cid then return false end
end
local rec = redis.call('HGET', KEYS[1], ARGV[1] .. cid)
if not rec then return false end
if cid == ARGV[5] and #rec == tonumber(ARGV[6]) then return {cid} end
local head, p = rd(rec, 1)
if head == '' then return false end

local vpre, raws = ARGV[2], {}
local function piece(vk, ch)
  local r = raws[vk]
  if r == nil then
    r = redis.call('HGET', KEYS[1], vpre .. vk) or ''
    raws[vk] = r
  end
  return find(r, ch)
end

-- each chain as one string of 4-byte-length frames (channel, then pieces newest first):
-- a reply of a few elements parses much faster client side than one of a hundred pieces,
-- and struct.pack is the cheapest framing in Lua
local chains = {}
local versions = rd(head, 1)
local q, m = 1, #versions
while q <= m do
  local ch, vk
  ch, q = rd(versions, q)
  vk, q = rd(versions, q)
  local chain = {struct.pack('>I4', #ch), ch}
  while vk do
    local pc = piece(vk, ch)
    if not pc then break end
    chain[#chain + 1] = struct.pack('>I4', #pc)
    chain[#chain + 1] = pc
    vk = nil
    if string.sub(pc, 1, 1) == 'D' then
      local _, r = rd(pc, 2)
      _, r = rd(pc, r)
      vk = rd(pc, r)
    end
  end
  chains[#chains + 1] = table.concat(chain)
end

local refs, n, _ = {}, #rec, nil
while p <= n do
  local ents
  _, p = rd(rec, p)
  _, p = rd(rec, p)
  ents, p = rd(rec, p)
  local r, k = 1, #ents
  while r <= k do
    local payload
    _, r = rd(ents, r)
    payload, r = rd(ents, r)
    if string.sub(payload, 1, 1) == 'R' then
      local ch, s = rd(payload, 2)
      local vk = rd(payload, s)
      refs[#refs + 1] = {vk, ch, piece(vk, ch) or ''}
    end
  end
end
return {cid, rec, chains, refs}
"""
)

# --------------------------------------------------------------------------- encoding

_SEP: Final = b"\x00"
_UUID_TAG: Final = b"\xff"  # never starts UTF-8 text


def _frame(data: bytes) -> bytes:
    """Varint length + bytes (the Lua `fr`)."""
    n = len(data)
    if n < 0x80:
        return bytes((n,)) + data
    prefix = bytearray()
    while n >= 0x80:
        prefix.append((n & 0x7F) | 0x80)
        n >>= 7
    prefix.append(n)
    return bytes(prefix) + data


def _skip(buf: bytes, pos: int) -> tuple[int, int]:
    """Start and end of the frame at `pos`, without copying it."""
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return pos, pos + n
        shift += 7


def _read(buf: bytes, pos: int) -> tuple[bytes, int]:
    start, end = _skip(buf, pos)
    return buf[start:end], end


def _frames(buf: bytes, pos: int = 0) -> Iterator[bytes]:
    n = len(buf)
    while pos < n:
        data, pos = _read(buf, pos)
        yield data


_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _frames4(buf: bytes) -> Iterator[bytes]:
    """Frames with a 4-byte big-endian length (the read script's reply)."""
    pos, n = 0, len(buf)
    while pos < n:
        end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
        yield buf[pos + 4 : end]
        pos = end


def _enc_id(ident: str) -> bytes:
    """LangGraph's ids are UUIDs: 17 bytes instead of 36 (they are stored a lot)."""
    if len(ident) == 36 and _CANONICAL_UUID.fullmatch(ident):
        return _UUID_TAG + bytes.fromhex(ident.replace("-", ""))
    return ident.encode()


def _dec_id(data: bytes) -> str:
    if data[:1] == _UUID_TAG and len(data) == 17:
        h = data[1:].hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return data.decode()


# LangGraph task paths start with one of these ("~__pregel_pull, model").
_PATH_PREFIXES: Final = (("~__pregel_pull, ", b"\x01"), ("~__pregel_push, ", b"\x02"))


def _enc_path(path: str) -> bytes:
    for prefix, code in _PATH_PREFIXES:
        if path.startswith(prefix):
            return code + path[len(prefix) :].encode()
    return path.encode()


def _dec_path(data: bytes) -> str:
    for prefix, code in _PATH_PREFIXES:
        if data[:1] == code:
            return prefix + data[1:].decode()
    return data.decode()


_TYPE_CODES: Final = {
    "msgpack": b"m",
    "null": b"n",
    "bytes": b"b",
    "bytearray": b"a",
    "json": b"j",
    "pickle": b"p",
}
_TYPE_NAMES: Final = {code: name for name, code in _TYPE_CODES.items()}


def _type_code(type_: str) -> bytes:
    return _TYPE_CODES.get(type_) or b"=" + type_.encode()


def _type_name(code: bytes) -> str:
    name = _TYPE_NAMES.get(code)
    if name is not None:
        return name
    if code[:1] != b"=":
        raise CorruptThreadError(f"unknown serialization type code {code!r}")
    return code[1:].decode()


def _verkey(version: str | int | float) -> str:
    """A channel version as a field-name part that remembers its type."""
    if isinstance(version, str):
        return "s" + version
    if isinstance(version, int):
        return "i" + str(version)
    return "f" + repr(float(version))


def _version(key: str) -> str | int | float:
    kind, text = key[:1], key[1:]
    if kind == "s":
        return text
    if kind == "i":
        return int(text)
    if kind == "f":
        return float(text)
    raise CorruptThreadError(f"unknown version key {key!r}")


def _array_header(data: bytes) -> tuple[int, int] | None:
    """(item count, header length) when `data` is a msgpack array."""
    if not data:
        return None
    b = data[0]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, 1
    if b == 0xDC and len(data) >= 3:
        return int.from_bytes(data[1:3], "big"), 3
    if b == 0xDD and len(data) >= 5:
        return int.from_bytes(data[1:5], "big"), 5
    return None


def _array_prefix(count: int) -> bytes:
    if count < 16:
        return bytes((0x90 | count,))
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


# Deflate dictionaries. NEVER change them: stored data needs them to be read back (a new one
# would need a new flag). VALUES: serialized LangChain messages of each kind with empty
# texts. HEAD: serialized metadata and checkpoint with typical keys.
_VALUES_DICT: Final = base64.b64decode(
    "x4gFlL5sYW5nY2hhaW5fY29yZS5tZXNzYWdlcy5zeXN0ZW2tU3lzdGVtTWVzc2FnZYanY29udGVudKCxYWRk"
    "aXRpb25hbF9rd2FyZ3OAsXJlc3BvbnNlX21ldGFkYXRhgKR0eXBlpnN5c3RlbaRuYW1lwKJpZMCzbW9kZWxf"
    "dmFsaWRhdGVfanNvbsf9BZS8bGFuZ2NoYWluX2NvcmUubWVzc2FnZXMudG9vbKtUb29sTWVzc2FnZYmnY29u"
    "dGVudNk6eyJsb2NhdGlvbiI6ICIiLCAidW5pdHMiOiAibWV0cmljIiwgInNvdXJjZSI6ICJzaW11bGF0ZWQi"
    "fbFhZGRpdGlvbmFsX2t3YXJnc4CxcmVzcG9uc2VfbWV0YWRhdGGApHR5cGWkdG9vbKRuYW1ltGdldF93ZWF0"
    "aGVyX2ZvcmVjYXN0omlkoKx0b29sX2NhbGxfaWSlY2FsbF+oYXJ0aWZhY3TApnN0YXR1c6dzdWNjZXNzs21v"
    "ZGVsX3ZhbGlkYXRlX2pzb27HhQWUvWxhbmdjaGFpbl9jb3JlLm1lc3NhZ2VzLmh1bWFurEh1bWFuTWVzc2Fn"
    "ZYanY29udGVudKCxYWRkaXRpb25hbF9rd2FyZ3OAsXJlc3BvbnNlX21ldGFkYXRhgKR0eXBlpWh1bWFupG5h"
    "bWXAomlkoLNtb2RlbF92YWxpZGF0ZV9qc29uyAFpBZS6bGFuZ2NoYWluX2NvcmUubWVzc2FnZXMuYWmpQUlN"
    "ZXNzYWdliadjb250ZW50oLFhZGRpdGlvbmFsX2t3YXJnc4CxcmVzcG9uc2VfbWV0YWRhdGGDrWZpbmlzaF9y"
    "ZWFzb26kc3RvcKptb2RlbF9uYW1loK5tb2RlbF9wcm92aWRlcqZvcGVuYWmkdHlwZaJhaaRuYW1lwKJpZK5s"
    "Y19ydW4tLTAxOWFiLap0b29sX2NhbGxzkYSkbmFtZbNnZXRfY3VycmVudF93ZWF0aGVypGFyZ3OCqGxvY2F0"
    "aW9uoKV1bml0c6ZtZXRyaWOiaWSlY2FsbF+kdHlwZal0b29sX2NhbGyyaW52YWxpZF90b29sX2NhbGxzkK51"
    "c2FnZV9tZXRhZGF0YYOsaW5wdXRfdG9rZW5zAK1vdXRwdXRfdG9rZW5zAKx0b3RhbF90b2tlbnMAs21vZGVs"
    "X3ZhbGlkYXRlX2pzb24="
)
_HEAD_DICT: Final = base64.b64decode(
    "h6Zzb3VyY2WkbG9vcKRzdGVwAadwYXJlbnRzgKZydW5faWSgpndyaXRlc8ClaW5wdXSmdXBkYXRlpGZvcmug"
    "haF2BKJ0c9kgMjAyNi0wMS0wMVQwMDowMDowMC4wMDAwMDArMDA6MDCtdmVyc2lvbnNfc2VlboOpX19pbnB1"
    "dF9fgKlfX3N0YXJ0X1+BqV9fc3RhcnRfX6sxMS4wMDAwMDAwMKVhZ2VudIGvYnJhbmNoOnRvOmFnZW50qzEx"
    "LjAwMDAwMDAwsHVwZGF0ZWRfY2hhbm5lbHOSqmJyYW5jaDp0bzqobWVzc2FnZXOtcGVuZGluZ19zZW5kc5A="
)
# Raw deflate, 2 KiB window, small memory: these are short texts.
_WBITS: Final = -11
_MIN_DEFLATE: Final = 48  # shorter data is stored raw


def _deflate(data: bytes, zdict: bytes) -> bytes | None:
    """`data` deflated with `zdict`, or None when that is not smaller."""
    if len(data) < _MIN_DEFLATE:
        return None
    compressor = zlib.compressobj(6, zlib.DEFLATED, _WBITS, 3, zlib.Z_DEFAULT_STRATEGY, zdict)
    packed = compressor.compress(data) + compressor.flush()
    return packed if len(packed) < len(data) else None


# primed with the values dictionary once; copied for each blob
_VALUES_INFLATER: Final = zlib.decompressobj(_WBITS, zdict=_VALUES_DICT)


def _inflate(data: bytes | memoryview, zdict: bytes | None = None) -> bytes:
    """Raw inflate with `zdict` (default: the values dictionary)."""
    if zdict is None:
        decompressor = _VALUES_INFLATER.copy()
    else:
        decompressor = zlib.decompressobj(_WBITS, zdict=zdict)
    out = decompressor.decompress(data)
    if not decompressor.eof:
        raise CorruptThreadError("truncated compressed data")
    return out


def _pack(data: bytes) -> bytes:
    packed = _deflate(data, _VALUES_DICT)
    return b"r" + data if packed is None else b"z" + packed


def _unpack(blob: bytes, pos: int = 0) -> bytes:
    flag = blob[pos : pos + 1]
    if flag == b"r":
        return blob[pos + 1 :]
    if flag == b"z":
        return _inflate(memoryview(blob)[pos + 1 :])
    raise CorruptThreadError(f"unknown blob flag {flag!r}")


def _b(value: Any) -> bytes:
    """A reply element as bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected Redis reply element {type(value).__name__}")


# --------------------------------------------------------------------------- records


class CorruptThreadError(RuntimeError):
    """The thread's hash holds a piece or record this saver cannot read."""


@dataclass(frozen=True, slots=True)
class _Head:
    versions: list[tuple[str, str]]  # (channel, version key)
    parent: str
    checkpoint: tuple[str, bytes]
    metadata: tuple[str, bytes]


def _make_head(
    versions: bytes, parent: str, checkpoint: tuple[str, bytes], metadata: tuple[str, bytes]
) -> bytes:
    body = (
        _frame(_enc_id(parent) if parent else b"")
        + _frame(_type_code(checkpoint[0]))
        + _frame(bytes(checkpoint[1]))
        + _frame(_type_code(metadata[0]))
        + _frame(bytes(metadata[1]))
    )
    packed = _deflate(body, _HEAD_DICT + versions)
    return _frame(versions) + (b"r" + body if packed is None else b"z" + packed)


def _parse_head(head: bytes) -> _Head:
    versions_b, pos = _read(head, 0)
    flag = head[pos : pos + 1]
    if flag == b"z":
        body = _inflate(memoryview(head)[pos + 1 :], _HEAD_DICT + versions_b)
    elif flag == b"r":
        body = head[pos + 1 :]
    else:
        raise CorruptThreadError(f"unknown checkpoint head flag {flag!r}")
    frames = list(_frames(body))
    if len(frames) != 5:
        raise CorruptThreadError("checkpoint head has an unexpected shape")
    parent, ck_code, ck_data, md_code, md_data = frames
    it = _frames(versions_b)
    versions = [(ch.decode(), vk.decode()) for ch, vk in zip(it, it, strict=True)]
    return _Head(
        versions,
        _dec_id(parent) if parent else "",
        (_type_name(ck_code), ck_data),
        (_type_name(md_code), md_data),
    )


@dataclass(frozen=True, slots=True)
class _StoredWrite:
    task_id: str
    task_path: str
    idx: int
    payload: bytes


def _split_record(record: bytes) -> tuple[bytes, list[_StoredWrite]]:
    """The head of a checkpoint record and its pending writes."""
    head, pos = _read(record, 0)
    writes: list[_StoredWrite] = []
    n = len(record)
    while pos < n:
        task_id, pos = _read(record, pos)
        task_path, pos = _read(record, pos)
        entries, pos = _read(record, pos)
        it = _frames(entries)
        tid, path = _dec_id(task_id), _dec_path(task_path)
        writes.extend(
            _StoredWrite(tid, path, int(idx), payload) for idx, payload in zip(it, it, strict=True)
        )
    return head, writes


def _piece_base(piece: bytes) -> str | None:
    """The version key a delta piece extends, None for a full piece."""
    if piece[:1] != b"D":
        return None
    _, pos = _skip(piece, 1)
    _, pos = _skip(piece, pos)
    base, _ = _read(piece, pos)
    return base.decode()


def _piece_chain(piece: bytes) -> bytes:
    chain, _ = _read(piece, 1)
    return chain


def _piece_items(piece: bytes) -> tuple[int, bytes]:
    """Item count and item bytes of a list piece (full or delta)."""
    _, pos = _skip(piece, 1)
    _, pos = _skip(piece, pos)
    _, pos = _skip(piece, pos)  # type (F) or base version (D)
    count, pos = _read(piece, pos)
    if not count:
        raise CorruptThreadError("a list piece without item count")
    return int(count), _unpack(piece, pos)


def _assemble(pieces: Sequence[bytes]) -> tuple[str, bytes]:
    """The typed value from a chain of pieces, newest first, ending with a full piece."""
    full = pieces[-1]
    if full[:1] != b"F":
        raise CorruptThreadError("a delta chain does not end with a full value")
    _, pos = _skip(full, 1)
    _, pos = _skip(full, pos)
    code, pos = _read(full, pos)
    count, pos = _read(full, pos)
    if not count:  # not a list: the serialized value itself
        if len(pieces) > 1:
            raise CorruptThreadError("a delta extends a value that is not a list")
        return _type_name(code), _unpack(full, pos)
    total = int(count)
    parts = [_unpack(full, pos)]
    for piece in reversed(pieces[:-1]):
        if piece[:1] != b"D":
            raise CorruptThreadError("a full value in the middle of a delta chain")
        n, items = _piece_items(piece)
        total += n
        parts.append(items)
    return "msgpack", _array_prefix(total) + b"".join(parts)


class _Strong:
    """A reference to an item that can't be weakly referenced (None, str, tuple...)."""

    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item

    def __call__(self) -> Any:
        return self.item


def _refs(items: Iterable[Any]) -> list[Callable[[], Any]]:
    """Weak references where possible: the cache must not keep conversations alive."""
    refs: list[Callable[[], Any]] = []
    for item in items:
        try:
            refs.append(weakref.ref(item))
        except TypeError:
            refs.append(_Strong(item))
    return refs


def _extends(refs: Sequence[Callable[[], Any]], value: list[Any]) -> bool:
    """Whether `value` starts with the very objects `refs` point to."""
    if len(value) < len(refs):
        return False
    for ref, item in zip(refs, value, strict=False):
        current = ref()
        if current is not item or (current is None and type(ref) is weakref.ref):
            return False  # another object, or a dead weak reference
    return True


def _alive(refs: Sequence[Callable[[], Any]]) -> bool:
    return all(type(ref) is not weakref.ref or ref() is not None for ref in refs)


@dataclass(slots=True)
class _ListState:
    """What the saver last saw of a list channel: delta detection by identity.

    `items` are weak references (strong ones for items that can't have any), so an entry
    dies with the conversation objects it describes: it is only useful while a run holds
    them, and each run starts with a read that remembers the list it returns.
    """

    verkey: str
    items: list[Callable[[], Any]]
    chain: bytes
    parent: str  # the checkpoint whose writes made this version ("" if unknown)


class _DeltaCache:
    """Per thread (LRU), per (namespace, channel): recently seen versions of a list.

    A few per channel, newest first: the one the saver last wrote, and the ones reads
    returned (a run extends what its first read returned; another reader, such as an API
    showing the state, must not make the run's own objects forgotten).
    """

    PER_CHANNEL = 3

    def __init__(self, max_threads: int) -> None:
        self._max = max_threads
        self._threads: OrderedDict[str, dict[tuple[str, str], list[_ListState]]] = OrderedDict()
        self._lock = threading.Lock()  # the sync API is called from LangGraph's threads

    def get(self, thread_id: str, ns: str, channel: str) -> list[_ListState]:
        with self._lock:
            states = self._threads.get(thread_id)
            if states is None:
                return []
            self._threads.move_to_end(thread_id)
            return list(states.get((ns, channel), ()))

    def update(
        self,
        thread_id: str,
        ns: str,
        states: Mapping[str, _ListState | None],
        *,
        read: bool = False,
    ) -> None:
        """A write replaces what is known of each channel (None: forget it); a read adds."""
        if self._max <= 0 or not states:
            return
        with self._lock:
            known = self._threads.get(thread_id)
            if known is None:
                if all(state is None for state in states.values()):
                    return
                known = self._threads[thread_id] = {}
            self._threads.move_to_end(thread_id)
            for channel, state in states.items():
                key = (ns, channel)
                if state is None:
                    known.pop(key, None)
                elif not read:
                    known[key] = [state]
                else:
                    alive = [s for s in known.get(key, ()) if _alive(s.items)]
                    known[key] = [state, *alive][: self.PER_CHANNEL]
            while len(self._threads) > self._max:
                self._threads.popitem(last=False)

    def forget(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)


@dataclass(slots=True)
class _Piece:
    channel: str
    verkey: str
    data: bytes
    base_verkey: str
    base_chain: bytes
    state: _ListState | None


@dataclass(slots=True)
class _PutPlan:
    thread_id: str
    ns: str
    keys: list[str]
    args: list[bytes | str]
    pieces: list[_Piece]
    cleared: list[str]  # channels written without a value: forget their list state
    next_config: RunnableConfig
    checkpoint: Checkpoint | None  # a copy taken before the put, for `_hot`
    metadata: CheckpointMetadata  # as stored
    parent_config: RunnableConfig | None
    record_size: int  # of the checkpoint's record, before any pending write


class _ThreadData:
    """A whole thread hash (HGETALL), for `list`."""

    def __init__(self, fields: Mapping[bytes, bytes]) -> None:
        self.records: dict[str, dict[str, bytes]] = {}
        self._versions: dict[tuple[str, str], bytes] = {}
        self._parsed: dict[tuple[str, str], dict[str, bytes]] = {}
        for name, value in fields.items():
            kind, _, rest = name.partition(_SEP)
            ns_b, _, ident = rest.partition(_SEP)
            if kind == b"c":
                self.records.setdefault(ns_b.decode(), {})[_dec_id(ident)] = value
            elif kind == b"v":
                self._versions[(ns_b.decode(), ident.decode())] = value

    def piece(self, ns: str, verkey: str, channel: str) -> bytes | None:
        parsed = self._parsed.get((ns, verkey))
        if parsed is None:
            it = _frames(self._versions.get((ns, verkey), b""))
            parsed = {ch.decode(): piece for ch, piece in zip(it, it, strict=True)}
            self._parsed[(ns, verkey)] = parsed
        return parsed.get(channel)

    def chain(self, ns: str, channel: str, verkey: str) -> list[bytes]:
        pieces: list[bytes] = []
        current: str | None = verkey
        while current is not None:
            piece = self.piece(ns, current, channel)
            if piece is None:
                break
            pieces.append(piece)
            current = _piece_base(piece)
        return pieces


def _prefixes(ns: str) -> tuple[bytes, bytes, bytes]:
    """Field-name prefixes of a namespace: checkpoints, versions, latest pointer."""
    ns_b = ns.encode()
    return b"c" + _SEP + ns_b + _SEP, b"v" + _SEP + ns_b + _SEP, b"l" + _SEP + ns_b


# --------------------------------------------------------------------------- the saver


class RedisSessionSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpointer storing each thread in one Redis hash (see module docstring).

    Args:
        redis: async client, used by the async methods (`ainvoke`, `astream`, ...).
        sync_redis: sync client, used by the sync methods (`invoke`, `get_state`, ...).
            Both must return bytes (`decode_responses=False`, the default).
        guarded: guard every write with the session's meta key: writes of a thread whose
            session is gone are dropped, and the thread expires at the session's deadline.
            A callable decides per thread id. Use False for `langgraph dev` and tests.
        ttl_seconds: expire a thread this long after its last write (refreshed on every
            write); with a guard deadline too, the sooner of the two applies.
        serde: serializer (default: LangGraph's `JsonPlusSerializer`).
        delta_cache_threads: for how many threads (LRU) to remember recent list versions,
            as weak references, to detect appends.
        keep_history: keep every checkpoint (True), or only the latest one of each
            namespace (False: each checkpoint replaces its parent, as with a shallow saver,
            and late writes for a replaced checkpoint are dropped). None (default): only
            the latest for guarded threads (a session's thread is only ever read at its
            latest checkpoint: memory then follows the messages, not the super-steps),
            every checkpoint for unguarded ones (`langgraph dev`, time travel).
        hot: keep the latest checkpoint of recently used threads (LRU, up to
            `hot_threads`) in memory, so that reading it again costs a check in Redis
            instead of a rebuild (see `checkpoint_cache`). None (default): for guarded
            threads only (a session's objects are shared with nobody but its runs).
        hot_threads: how many threads `hot` keeps.
    """

    def __init__(
        self,
        redis: aioredis.Redis | None = None,
        *,
        sync_redis: redis.Redis | None = None,
        guarded: bool | Callable[[str], bool] = True,
        ttl_seconds: float | None = None,
        serde: SerializerProtocol | None = None,
        delta_cache_threads: int = DEFAULT_DELTA_CACHE_THREADS,
        keep_history: bool | None = None,
        hot: bool | None = None,
        hot_threads: int = DEFAULT_HOT_THREADS,
    ) -> None:
        super().__init__(serde=serde)
        if redis is None and sync_redis is None:
            raise ValueError("RedisSessionSaver needs `redis` (async) and/or `sync_redis`")
        for client in (redis, sync_redis):
            if client is not None and client.get_encoder().decode_responses:
                raise ValueError(
                    "RedisSessionSaver needs clients with decode_responses=False: "
                    "checkpoints are binary"
                )
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive (or None for no TTL)")
        self.redis = redis
        self.sync_redis = sync_redis
        self.guarded = guarded
        self.keep_history = keep_history
        self.ttl_seconds = ttl_seconds
        self._ttl_ms = "0" if ttl_seconds is None else str(max(1, round(ttl_seconds * 1000)))
        self._cache = _DeltaCache(delta_cache_threads)
        self.hot = hot
        self._hot = HotCheckpoints(hot_threads)
        self._owns_clients = False
        self._thread_pattern = keys.THREAD_PATTERN
        # (thread, namespace, checkpoint id) -> writes waiting for their replacement
        self._waiting: dict[tuple[str, str, str], list[asyncio.Future[bool]]] = {}
        self._replaced: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        # thread -> True if its checkpoints carry DeltaChannel counters (never pruned)
        self._delta_threads: OrderedDict[str, bool] = OrderedDict()
        self._kinds_lock = threading.Lock()  # `_plan_put` runs in LangGraph's threads too
        self._scripts: dict[str, Any] = {}
        self._ascripts: dict[str, Any] = {}
        for name, source in (
            ("put", _PUT_LUA),
            ("put_writes", _PUT_WRITES_LUA),
            ("get", _GET_LUA),
        ):
            if sync_redis is not None:
                self._scripts[name] = sync_redis.register_script(source)
            if redis is not None:
                self._ascripts[name] = redis.register_script(source)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> Self:
        """A saver with its own sync and async clients for `url` (closed by `aclose`)."""
        saver = cls(aioredis.Redis.from_url(url), sync_redis=redis.Redis.from_url(url), **kw)
        saver._owns_clients = True
        return saver

    def close(self) -> None:
        """Close the sync client if `from_url` created it."""
        if self._owns_clients and self.sync_redis is not None:
            self.sync_redis.close()

    async def aclose(self) -> None:
        """Close the clients `from_url` created."""
        if self._owns_clients:
            if self.redis is not None:
                await self.redis.aclose()
            self.close()

    # ------------------------------------------------------------------ plumbing

    def _sync_client(self) -> redis.Redis:
        if self.sync_redis is None:
            raise RuntimeError(
                "RedisSessionSaver was created without `sync_redis`: sync graph methods "
                "(invoke, stream, get_state...) need it. Use the async ones (ainvoke, "
                "astream, aget_state...), pass sync_redis=redis.Redis(...), or use from_url()."
            )
        return self.sync_redis

    def _async_client(self) -> aioredis.Redis:
        if self.redis is None:
            raise RuntimeError(
                "RedisSessionSaver was created without an async client: async graph "
                "methods (ainvoke, astream...) need `redis`. Pass redis=redis.asyncio."
                "Redis(...) or use from_url()."
            )
        return self.redis

    def _run(self, name: str, keys_: list[str], args: Sequence[bytes | str]) -> Any:
        client = self._sync_client()
        return self._scripts[name](keys=keys_, args=args, client=client)

    async def _arun(self, name: str, keys_: list[str], args: Sequence[bytes | str]) -> Any:
        client = self._async_client()
        return await self._ascripts[name](keys=keys_, args=args, client=client)

    def _is_guarded(self, thread_id: str) -> bool:
        return self.guarded(thread_id) if callable(self.guarded) else bool(self.guarded)

    def _keeps_hot(self, thread_id: str) -> bool:
        """Whether the thread's latest checkpoint is kept in memory (see `hot`)."""
        if self.hot is not None:
            return self.hot
        return self._is_guarded(thread_id)

    def _prunes(self, thread_id: str) -> bool:
        """Whether the thread keeps its latest checkpoint only (see `keep_history`).

        Never for a thread whose checkpoints carried DeltaChannel counters: such a
        channel is rebuilt from the writes of the parent chain.
        """
        if self._delta_threads.get(thread_id):
            return False
        if self.keep_history is not None:
            return not self.keep_history
        return self._is_guarded(thread_id)

    def _note_kind(self, thread_id: str, metadata: CheckpointMetadata) -> None:
        """Remember whether the thread uses DeltaChannel (once it did, for good)."""
        with self._kinds_lock:
            known = self._delta_threads.get(thread_id, False)
            self._delta_threads[thread_id] = known or bool(metadata.get(_DELTA_COUNTERS))
            self._delta_threads.move_to_end(thread_id)
            while len(self._delta_threads) > _THREAD_KINDS_MEMORY:
                self._delta_threads.popitem(last=False)

    def _defers_writes(self, thread_id: str) -> bool:
        """Pruned, and known (from a checkpoint this saver stored) not to use DeltaChannel."""
        return self._delta_threads.get(thread_id) is False and self._prunes(thread_id)

    def _write_keys(self, thread_id: str) -> tuple[list[str], list[bytes | str]]:
        """KEYS and the common ARGV head of the write scripts."""
        guarded = self._is_guarded(thread_id)
        return (
            [keys.thread(thread_id), keys.session_meta(thread_id)],
            ["1" if guarded else "0", self._ttl_ms, keys.EXPIRES_AT_FIELD],
        )

    def _thread_id_of(self, key: bytes) -> str | None:
        return keys.thread_id_of(key.decode())

    # ------------------------------------------------------------------ put

    def _piece(
        self,
        thread_id: str,
        ns: str,
        parent: str,
        channel: str,
        verkey: str,
        value: Any,
        deltas: bool,
    ) -> _Piece:
        if deltas and isinstance(value, list):
            prev = next(
                (
                    state
                    for state in self._cache.get(thread_id, ns, channel)
                    if state.verkey != verkey and _extends(state.items, value)
                ),
                None,
            )
            if prev is not None:
                # Same objects up front: serialize only what was appended.
                type_, data = self.serde.dumps_typed(value[len(prev.items) :])
                header = _array_header(data) if type_ == "msgpack" else None
                if header is not None:
                    count, header_len = header
                    items = bytes(data[header_len:])
                    items_digest = _digest(items)
                    chain = _digest(prev.chain + items_digest)
                    piece = (
                        b"D"
                        + _frame(chain)
                        + _frame(items_digest)
                        + _frame(prev.verkey.encode())
                        + _frame(str(count).encode())
                        + _pack(items)
                    )
                    refs = prev.items + _refs(value[len(prev.items) :])
                    state = _ListState(verkey, refs, chain, parent)
                    return _Piece(channel, verkey, piece, prev.verkey, prev.chain, state)
        type_, raw = self.serde.dumps_typed(value)
        data = bytes(raw)
        header = _array_header(data) if type_ == "msgpack" and isinstance(value, list) else None
        if header is None:
            piece = b"F" + _frame(b"") + _frame(b"") + _frame(_type_code(type_))
            return _Piece(channel, verkey, piece + _frame(b"") + _pack(data), "", b"", None)
        count, header_len = header
        items = data[header_len:]
        items_digest = _digest(items)  # the chain of a full list is its items digest
        piece = (
            b"F"
            + _frame(items_digest)
            + _frame(items_digest)
            + _frame(b"m")
            + _frame(str(count).encode())
            + _pack(items)
        )
        state = _ListState(verkey, _refs(value), items_digest, parent)
        return _Piece(channel, verkey, piece, "", b"", state)

    def _plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        deltas: bool = True,
    ) -> _PutPlan:
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        ns: str = conf.get("checkpoint_ns", "") or ""
        parent: str = conf.get("checkpoint_id") or ""
        cid = checkpoint["id"]
        values = checkpoint["channel_values"]

        # id, versions and values are rebuilt on read: no need to store them twice
        body = {
            k: v
            for k, v in checkpoint.items()
            if k not in ("id", "channel_versions", "channel_values")
        }
        versions = b"".join(
            _frame(ch.encode()) + _frame(_verkey(v).encode())
            for ch, v in checkpoint["channel_versions"].items()
        )
        stored_metadata = get_checkpoint_metadata(config, metadata)
        head = _make_head(
            versions,
            parent,
            self.serde.dumps_typed(body),
            self.serde.dumps_typed(stored_metadata),
        )
        pieces: list[_Piece] = []
        cleared: list[str] = []
        for channel, version in new_versions.items():
            if channel in values:
                verkey = _verkey(version)
                value = values[channel]
                pieces.append(self._piece(thread_id, ns, parent, channel, verkey, value, deltas))
            else:  # an empty channel: nothing to store, absence reads the same
                cleared.append(channel)

        self._note_kind(thread_id, metadata)
        keys_, args = self._write_keys(thread_id)
        cpre, vpre, latest = _prefixes(ns)
        cid_b = _enc_id(cid)
        args += [
            cpre + cid_b,
            latest,
            cid_b,
            cpre,
            _enc_id(parent) if parent else b"",
            vpre,
            head,
            str(len(pieces)),
        ]
        for piece in pieces:
            args += [piece.channel, piece.verkey, piece.data, piece.base_verkey, piece.base_chain]
        args.append("1" if self._prunes(thread_id) else "0")
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
        }
        parent_config: RunnableConfig | None = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
            if parent
            else None
        )
        return _PutPlan(
            thread_id,
            ns,
            keys_,
            args,
            pieces,
            cleared,
            next_config,
            # copied now: LangGraph updates the version maps in place while the put runs
            copy_checkpoint(checkpoint) if self._keeps_hot(thread_id) else None,
            stored_metadata,
            parent_config,
            len(_frame(head)),
        )

    def _after_put(self, plan: _PutPlan, reply: Any) -> bool:
        """Handle the put script's reply; True when it must be re-sent without deltas."""
        status, skipped = int(reply[0]), int(reply[1])
        if status == _STALE_BASE:
            log.debug("thread %s: delta base gone, re-sending full values", plan.thread_id)
            self._cache.forget(plan.thread_id)
            return True
        if status == _DROPPED:
            log.debug("dropped checkpoint of thread %s: its session is gone", plan.thread_id)
            self._cache.forget(plan.thread_id)
            self._hot.forget(plan.thread_id)
            return False
        if status == _APPLIED_NO_DEADLINE:
            log.warning("session %s has no valid %s", plan.thread_id, keys.EXPIRES_AT_FIELD)
        states: dict[str, _ListState | None] = dict.fromkeys(plan.cleared)
        for piece in plan.pieces:
            # a version already stored keeps its first value: don't assume it is ours
            states[piece.channel] = None if skipped else piece.state
        self._cache.update(plan.thread_id, plan.ns, states)
        if skipped or plan.checkpoint is None:
            self._hot.forget(plan.thread_id, plan.ns)
        else:
            hot = HotCheckpoint(
                plan.checkpoint["id"],
                plan.record_size,
                plan.checkpoint,
                plan.metadata,
                plan.parent_config,
            )
            self._hot.remember(plan.thread_id, plan.ns, hot)
        return False

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values (one script, one round trip)."""
        plan = self._plan_put(config, checkpoint, metadata, new_versions)
        if self._after_put(plan, self._run("put", plan.keys, plan.args)):
            plan = self._plan_put(config, checkpoint, metadata, new_versions, deltas=False)
            self._after_put(plan, self._run("put", plan.keys, plan.args))
        return plan.next_config

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async `put`."""
        plan = self._plan_put(config, checkpoint, metadata, new_versions)
        if self._after_put(plan, await self._arun("put", plan.keys, plan.args)):
            plan = self._plan_put(config, checkpoint, metadata, new_versions, deltas=False)
            self._after_put(plan, await self._arun("put", plan.keys, plan.args))
        parent = config["configurable"].get("checkpoint_id")
        if parent and self._prunes(plan.thread_id):
            # the parent is gone with its writes: the ones still waiting need not be stored
            self._release((plan.thread_id, plan.ns, parent), replaced=True)
        return plan.next_config

    # ------------------------------------------------------------------ deferred writes

    def _release(self, key: tuple[str, str, str], *, replaced: bool) -> None:
        """Wake the writes waiting for checkpoint `key`: True = it was replaced."""
        if replaced:
            self._replaced[key] = None
            while len(self._replaced) > _REPLACED_MEMORY:
                self._replaced.popitem(last=False)
        for waiter in self._waiting.pop(key, ()):
            if not waiter.done():
                waiter.set_result(replaced)

    async def _replaced_soon(self, key: tuple[str, str, str]) -> bool:
        """Whether checkpoint `key` gets replaced within `WRITES_GRACE_S`."""
        if key in self._replaced:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiting.setdefault(key, []).append(waiter)
        timer = loop.call_later(WRITES_GRACE_S, _settle, waiter, False)
        try:
            return await waiter
        finally:
            timer.cancel()
            waiting = self._waiting.get(key)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._waiting[key]

    # ------------------------------------------------------------------ put_writes

    def _plan_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> tuple[str, list[str], list[bytes | str]]:
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        ns: str = conf.get("checkpoint_ns", "") or ""
        cid: str = conf["checkpoint_id"]
        keys_, args = self._write_keys(thread_id)
        cpre, vpre, latest = _prefixes(ns)
        args += [cpre + _enc_id(cid), _enc_id(task_id), _enc_path(task_path), vpre]
        args.append(str(len(writes)))
        for idx, (channel, value) in enumerate(writes):
            type_, raw = self.serde.dumps_typed(value)
            data = bytes(raw)
            items_digest = count = b""
            candidate = ""
            header = _array_header(data) if type_ == "msgpack" else None
            if header is not None:
                n, header_len = header
                data = data[header_len:]
                items_digest, count = _digest(data), str(n).encode()
                # if the saver already stored the version these writes made, its piece
                # may hold the same items: the script then stores a reference
                for state in self._cache.get(thread_id, ns, channel):
                    if state.parent == cid:
                        candidate = state.verkey
                        break
            payload = (
                b"V"
                + _frame(channel.encode())
                + _frame(_type_code(type_))
                + _frame(items_digest)
                + _frame(count)
                + _pack(data)
            )
            args += [str(WRITES_IDX_MAP.get(channel, idx)), payload, candidate]
        args += ["1" if self._prunes(thread_id) else "0", latest, _enc_id(cid)]
        return thread_id, keys_, args

    def _after_put_writes(self, thread_id: str, reply: Any) -> None:
        status = int(reply)
        if status == _DROPPED:
            log.debug("dropped writes of thread %s: its session is gone", thread_id)
            self._cache.forget(thread_id)
        elif status == _APPLIED_NO_DEADLINE:
            log.warning("session %s has no valid %s", thread_id, keys.EXPIRES_AT_FIELD)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against a checkpoint (one script, one round trip)."""
        thread_id, keys_, args = self._plan_put_writes(config, writes, task_id, task_path)
        self._after_put_writes(thread_id, self._run("put_writes", keys_, args))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async `put_writes`.

        On a pruned thread, the writes first wait (`WRITES_GRACE_S` at most) for the next
        checkpoint: it replaces theirs and deletes its writes, so when it comes they are
        not stored at all (one round trip and their serialization saved per task).
        Special writes (errors, interrupts...), which no checkpoint follows, are stored at
        once, and so are the writes waiting for the same checkpoint.
        """
        conf = config["configurable"]
        thread_id = conf["thread_id"]
        if self._defers_writes(thread_id):
            key = (thread_id, conf.get("checkpoint_ns", "") or "", conf["checkpoint_id"])
            if any(channel in WRITES_IDX_MAP for channel, _ in writes):
                self._release(key, replaced=False)
            elif await self._replaced_soon(key):
                return
        thread_id, keys_, args = self._plan_put_writes(config, writes, task_id, task_path)
        self._after_put_writes(thread_id, await self._arun("put_writes", keys_, args))

    # ------------------------------------------------------------------ reads

    def _get_args(
        self, config: RunnableConfig
    ) -> tuple[str, str, list[str], list[bytes], HotCheckpoint | None]:
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        ns: str = conf.get("checkpoint_ns", "") or ""
        cid = get_checkpoint_id(config)
        cpre, vpre, latest = _prefixes(ns)
        hot = self._hot.get(thread_id, ns)
        if hot is not None and cid and cid != hot.checkpoint_id:
            hot = None
        args = [cpre, vpre, latest, _enc_id(cid) if cid else b""]
        if hot is None:
            args += [b"", b"-1"]
        else:
            args += [_enc_id(hot.checkpoint_id), str(hot.record_size).encode()]
        return thread_id, ns, [keys.thread(thread_id)], args, hot

    def _parse_get(
        self, thread_id: str, ns: str, reply: Any, hot: HotCheckpoint | None, *, latest: bool
    ) -> CheckpointTuple | None:
        """The reply of the get script; `latest`: the read asked for the latest checkpoint."""
        if not reply:
            return None
        if len(reply) == 1:  # the checkpoint held in memory is still the one stored
            assert hot is not None, "the get script answered for a checkpoint not sent"
            return hot.as_tuple(thread_id, ns)
        cid_b, record, chains_r, refs_r = reply
        chains: dict[str, list[bytes]] = {}
        for chain_b in chains_r:
            channel, *pieces = _frames4(_b(chain_b))
            chains[channel.decode()] = pieces
        refs = {(_b(vk).decode(), _b(ch).decode()): _b(piece) for vk, ch, piece in refs_r}
        record_b = _b(record)
        found = self._make_tuple(
            thread_id,
            ns,
            _dec_id(_b(cid_b)),
            record_b,
            lambda channel, verkey: chains.get(channel, []),
            lambda verkey, channel: refs.get((verkey, channel)),
            remember=True,
        )
        if latest and not found.pending_writes and self._keeps_hot(thread_id):
            entry = HotCheckpoint(
                found.checkpoint["id"],
                len(record_b),
                copy_checkpoint(found.checkpoint),
                found.metadata,
                found.parent_config,
            )
            self._hot.remember(thread_id, ns, entry)
        return found

    def _make_tuple(
        self,
        thread_id: str,
        ns: str,
        cid: str,
        record: bytes,
        chain_of: Callable[[str, str], list[bytes]],
        piece_of: Callable[[str, str], bytes | None],
        *,
        remember: bool,
        head: _Head | None = None,
    ) -> CheckpointTuple:
        head_b, stored_writes = _split_record(record)
        head = head or _parse_head(head_b)
        values: dict[str, Any] = {}
        states: dict[str, _ListState | None] = {}
        for channel, verkey in head.versions:
            pieces = chain_of(channel, verkey)
            if not pieces:
                continue  # an empty channel
            value = self.serde.loads_typed(_assemble(pieces))
            values[channel] = value
            chain = _piece_chain(pieces[0])  # only list pieces have one
            if remember and chain and isinstance(value, list):
                # the next put of this thread can store just what gets appended to it
                states[channel] = _ListState(verkey, _refs(value), chain, "")
        if remember:
            self._cache.update(thread_id, ns, states, read=True)

        checkpoint = self.serde.loads_typed(head.checkpoint)
        checkpoint["id"] = cid
        checkpoint["channel_versions"] = {ch: _version(vk) for ch, vk in head.versions}
        checkpoint["channel_values"] = values

        ordered = sorted(
            stored_writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx)
        )
        pending: list[PendingWrite] = [
            (w.task_id, *self._load_write(w.payload, piece_of)) for w in ordered
        ]
        return CheckpointTuple(
            config={
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
            },
            checkpoint=cast(Checkpoint, checkpoint),
            metadata=cast(CheckpointMetadata, self.serde.loads_typed(head.metadata)),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": head.parent,
                    }
                }
                if head.parent
                else None
            ),
            pending_writes=pending,
        )

    def _load_write(
        self, payload: bytes, piece_of: Callable[[str, str], bytes | None]
    ) -> tuple[str, Any]:
        channel_b, pos = _read(payload, 1)
        channel = channel_b.decode()
        if payload[:1] == b"V":
            code, pos = _read(payload, pos)
            _, pos = _skip(payload, pos)  # items digest
            count, pos = _read(payload, pos)
            data = _unpack(payload, pos)
            if count:
                data = _array_prefix(int(count)) + data
            return channel, self.serde.loads_typed((_type_name(code), data))
        if payload[:1] != b"R":
            raise CorruptThreadError("unknown pending write payload")
        verkey, _ = _read(payload, pos)
        piece = piece_of(verkey.decode(), channel)
        if not piece:
            raise CorruptThreadError("a pending write refers to a missing channel value")
        n, items = _piece_items(piece)
        return channel, self.serde.loads_typed(("msgpack", _array_prefix(n) + items))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of `config` (its `checkpoint_id`, else the latest): one round trip."""
        thread_id, ns, keys_, args, hot = self._get_args(config)
        reply = self._run("get", keys_, args)
        return self._parse_get(thread_id, ns, reply, hot, latest=not get_checkpoint_id(config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async `get_tuple`."""
        thread_id, ns, keys_, args, hot = self._get_args(config)
        reply = await self._arun("get", keys_, args)
        return self._parse_get(thread_id, ns, reply, hot, latest=not get_checkpoint_id(config))

    # ------------------------------------------------------------------ list

    def _list_thread(
        self,
        thread_id: str,
        fields: Mapping[bytes, bytes],
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
    ) -> Iterator[CheckpointTuple]:
        """Matching checkpoints of one thread, newest first per namespace (as InMemorySaver)."""
        data = _ThreadData(fields)
        conf = config["configurable"] if config else {}
        only_ns: str | None = conf.get("checkpoint_ns")
        only_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        for ns in sorted(data.records):
            if only_ns is not None and ns != only_ns:
                continue
            records = data.records[ns]
            for cid in sorted(records, reverse=True):
                if only_id and cid != only_id:
                    continue
                if before_id and cid >= before_id:
                    continue
                head_b, _ = _read(records[cid], 0)
                if not head_b:
                    continue  # writes whose checkpoint never came
                head = _parse_head(head_b)
                if filter:
                    metadata = self.serde.loads_typed(head.metadata)
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                yield self._make_tuple(
                    thread_id,
                    ns,
                    cid,
                    records[cid],
                    functools.partial(data.chain, ns),
                    functools.partial(data.piece, ns),
                    remember=False,
                    head=head,
                )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints matching the criteria, newest first; `config` None = all threads."""
        client = self._sync_client()
        thread_keys: Iterable[Any]
        if config is not None:
            thread_keys = [keys.thread(config["configurable"]["thread_id"])]
        else:
            thread_keys = _unique(client.scan_iter(match=self._thread_pattern, count=_SCAN_COUNT))
        remaining = limit
        for key in thread_keys:
            thread_id = self._thread_id_of(_b(key))
            if thread_id is None:
                continue
            # bytes: decode_responses=False is checked in __init__
            fields = cast(dict[bytes, bytes], client.hgetall(key))
            for item in self._list_thread(thread_id, fields, config, filter, before):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async `list`."""
        client = self._async_client()
        thread_keys: list[Any]
        if config is not None:
            thread_keys = [keys.thread(config["configurable"]["thread_id"])]
        else:
            found: dict[bytes, None] = {}
            async for key in client.scan_iter(match=self._thread_pattern, count=_SCAN_COUNT):
                found[_b(key)] = None
            thread_keys = list(found)
        remaining = limit
        for key in thread_keys:
            thread_id = self._thread_id_of(_b(key))
            if thread_id is None:
                continue
            fields = cast(dict[bytes, bytes], await client.hgetall(key))
            for item in self._list_thread(thread_id, fields, config, filter, before):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item

    # ------------------------------------------------------------------ delete, versions

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread: one `DEL` of its hash."""
        self._cache.forget(thread_id)
        self._hot.forget(thread_id)
        self._sync_client().delete(keys.thread(thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async `delete_thread`."""
        self._cache.forget(thread_id)
        self._hot.forget(thread_id)
        await self._async_client().delete(keys.thread(thread_id))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Short increasing versions: "<digit count><n>.<8 hex>", e.g. "15.0c2f9a41".

        The number is prefixed by its digit count so plain string comparison (what
        LangGraph uses) orders versions up to 10**9 steps. The random part keeps two
        branches forked from one checkpoint from ever naming different values alike.
        Versions are stored ~10 times per checkpoint, hence far shorter than
        InMemorySaver's 50 characters.
        """
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            head = str(current).split(".", 1)[0]
            if len(head) >= 2 and head[0].isdigit() and int(head[0]) == len(head) - 1:
                number = int(head[1:])
            else:
                number = int(head) if head.isdigit() else 0
        digits = str(number + 1)
        return f"{len(digits)}{digits}.{random.getrandbits(32):08x}"


def _settle(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)


def _unique(items: Iterable[Any]) -> Iterator[Any]:
    """SCAN may return a key twice."""
    seen: set[bytes] = set()
    for item in items:
        key = _b(item)
        if key not in seen:
            seen.add(key)
            yield item
