"""`RedisSessionSaver`: a LangGraph checkpointer keeping each thread in ONE Redis hash.

Why our own saver: the stock `langgraph-checkpoint-redis` savers spread a thread over many
keys and search indexes, can't promise that a late write doesn't bring a deleted thread
back, and store the whole `messages` list again at every super-step (memory quadratic in
turns). Here a thread is one hash, `keys.thread(thread_id)`:

* deleting a thread is one `DEL`, and one `PEXPIREAT` bounds the life of all its data;
* every write is ONE Lua script (one round trip) that can first check the session's guard
  key (`keys.session_meta(thread_id)`): no session, no write; with a session, the thread
  key expires at the session's hard deadline (`keys.EXPIRES_AT_FIELD`, epoch ms);
* a list channel (`messages` with `add_messages`) is stored as deltas: each version keeps
  only the items appended since the version it extends, so memory grows linearly;
* reading a checkpoint (latest or by id) is ONE Lua script that follows the delta chains
  server side and returns every piece, joined client side into one msgpack document.

Layout of the hash (field names use NUL as separator: namespaces and channel names may
hold `:` and `|` but never NUL; `<ns>` is "" for the root graph):

``l\\0<ns>``
    Id of the newest checkpoint of the namespace (the greatest id, as in `InMemorySaver`).

``c\\0<ns>\\0<checkpoint id>``
    The checkpoint record: ``frame(head)`` followed by the pending writes stored against the
    checkpoint, one group per task: ``frame(task_id) frame(task_path) frame(entries)`` with
    ``entries = (frame(idx) frame(payload))*``. The head is ``frame(versions) frame(parent id)
    frame(type) frame(checkpoint) frame(type) frame(metadata)``: `versions` lists
    ``frame(channel) frame(version key)`` for every channel of `channel_versions` (readable by
    Lua, so the read script knows which pieces to fetch); the checkpoint itself is serialized
    without `id`, `channel_versions` and `channel_values`, which are rebuilt on read. Writes
    can arrive before their checkpoint (LangGraph saves both in the background), so a record
    may start with an empty head; such a record is not a checkpoint yet.
    A write payload is ``V frame(channel) frame(type) data`` or, once the values it wrote are
    stored as channel pieces, ``R frame(channel) frame(version key) frame(msgpack array header)
    frame(offset) frame(length)``: a reference to those bytes in the piece (see below).

``v\\0<ns>\\0<version key>``
    The channel values created with that version, ``(frame(channel) frame(piece))*``
    (LangGraph gives all channels written by one super-step the same version, so this is
    usually one field per checkpoint). A piece is either full, ``F frame(digest)
    frame(type) data``, or a delta of a list channel, ``D frame(digest) frame(base version key)
    frame(count) items``: `items` are the msgpack encodings of the `count` items appended to
    the base version's list. A msgpack array is its header followed by its items' encodings,
    so ``header(total) + base items + delta items ...`` is exactly the serialized list: one
    `loads_typed` rebuilds it. The digest is a hash of the chain (full data, or base digest +
    delta items) so a delta is only ever stored on top of the exact bytes it extends.
    Pieces are write-once: a version names one value (our versions carry a random part, so
    forked branches never share one), which keeps deltas and write references valid forever.
    Channels without a value ("empty") store nothing, as absence means the same.

Frames are a base-128 varint length followed by the bytes. Type names of `serde` are stored
as one-letter codes (`m` msgpack, `n` null, ...); version keys are the version with a type
letter in front (`s` str, `i` int, `f` float) so channel versions come back with their type.

Why the pending writes are rewritten as references: a node's write to `messages` holds the
same message objects the next checkpoint appends, and keeping both copies doubles the memory
of a conversation. The `put` script therefore replaces, in the parent checkpoint's writes,
every msgpack list write whose item bytes occur verbatim in a new list piece of the same
channel by a reference to those bytes. Byte equality makes the reference exact whatever the
objects are; a write that was serialized differently (or arrives after the child checkpoint)
simply stays literal.

Delta detection is by identity: the saver remembers, per thread, namespace and list channel,
the items of the last version it wrote or read (an LRU of threads). When the next value
starts with the very same objects, only the new ones are serialized. Like LangGraph itself
this assumes checkpointed values are not mutated in place afterwards. If the remembered
version is no longer in Redis (thread deleted or expired meanwhile, another process...), the
script refuses the delta and the saver sends full values: a second round trip in that rare
case only.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import operator
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

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
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)

from session_policy import keys

log = logging.getLogger(__name__)

__all__ = ["RedisSessionSaver"]

_SEP = "\x00"
# Writes shorter than this stay literal: a reference would not be smaller.
_MIN_REF_BYTES = 32
# Threads whose last list values are remembered for delta detection.
DEFAULT_DELTA_CACHE_THREADS = 1024
# SCAN page size when listing every thread.
_SCAN_COUNT = 500

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

-- channel -> piece of a version field
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
"""

# Guard and expiry of the write scripts. ARGV[1] "1" = guarded, ARGV[2] TTL in ms ("0" =
# none), ARGV[3] the deadline field of the guard hash. KEYS[1] thread, KEYS[2] guard.
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
# then per piece: channel, version key, piece, base version key or "", base digest, "1" when
# the parent's writes may be replaced by references into it.
_PUT_LUA = (
    _LUA_COMMON
    + _LUA_GUARD
    + r"""
local function gt(a, b)
  local la, lb = #a, #b
  local n = la < lb and la or lb
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return la > lb
end

local ok, deadline = guard()
if not ok then return {0, 0} end

local vpre = ARGV[9]
local np = tonumber(ARGV[11])
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

-- 1. every delta extends exactly the stored bytes it was computed from, or nothing is written
for i = 0, np - 1 do
  local b = 12 + i * 6
  local base = ARGV[b + 3]
  if base ~= '' then
    local piece = version(base)[ARGV[b]]
    if not piece then return {2, 0} end
    local tag = string.sub(piece, 1, 1)
    if (tag ~= 'F' and tag ~= 'D') or rd(piece, 2) ~= ARGV[b + 4] then return {2, 0} end
  end
end

-- 2. new pieces (write-once: a stored version keeps its value)
local skipped, stored, appends, order = 0, {}, {}, {}
for i = 0, np - 1 do
  local b = 12 + i * 6
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
  if ARGV[b + 5] == '1' then stored[ch] = {vk, piece} end
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

-- 4. the parent's list writes now stored in a piece become references to it
if ARGV[8] ~= '' and next(stored) then
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
          local ch, r = rd(payload, 2)
          local s = stored[ch]
          if s then
            local code, d = rd(payload, r)
            local h = string.byte(payload, d)
            local hl = 0
            if code == 'm' and h then
              if h >= 0x90 and h <= 0x9f then hl = 1
              elseif h == 0xdc then hl = 3
              elseif h == 0xdd then hl = 5 end
            end
            if hl > 0 and #payload - d + 1 - hl >= tonumber(ARGV[12 + np * 6]) then
              local items = string.sub(payload, d + hl)
              local pos = string.find(s[2], items, 1, true)
              if pos then
                payload = 'R' .. fr(ch) .. fr(s[1]) .. fr(string.sub(payload, d, d + hl - 1))
                  .. fr(tostring(pos - 1)) .. fr(tostring(#items))
                changed = true
              end
            end
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

# put_writes: ARGV[4] checkpoint field, [5] task id, [6] task path, [7] write count, then
# per write: idx, payload. Regular writes (idx >= 0) are insert-if-absent per (task, idx);
# special ones (negative idx, `WRITES_IDX_MAP`) overwrite, as in `InMemorySaver`.
_PUT_WRITES_LUA = (
    _LUA_COMMON
    + _LUA_GUARD
    + r"""
local ok, deadline = guard()
if not ok then return 0 end

local rec = redis.call('HGET', KEYS[1], ARGV[4]) or fr('')
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
local changed = false
for i = 0, tonumber(ARGV[7]) - 1 do
  local idx, payload = ARGV[8 + 2 * i], ARGV[9 + 2 * i]
  if vals[idx] == nil then
    idxs[#idxs + 1] = idx
    vals[idx] = payload
    changed = true
  elseif tonumber(idx) < 0 then
    vals[idx] = payload
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
# [4] checkpoint id or "" for the latest. Returns {id, record, chains, refs}: a chain is
# {channel, newest piece, ..., full piece}; a ref is {version key, channel, piece} for each
# pending write stored as a reference.
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
local head, p = rd(rec, 1)
if head == '' then return false end

local vpre, parsed = ARGV[2], {}
local function piece(vk, ch)
  local e = parsed[vk]
  if e == nil then
    local r = redis.call('HGET', KEYS[1], vpre .. vk)
    e = r and entries(r) or {}
    parsed[vk] = e
  end
  return e[ch]
end

local chains = {}
local versions = rd(head, 1)
local q, m = 1, #versions
while q <= m do
  local ch, vk
  ch, q = rd(versions, q)
  vk, q = rd(versions, q)
  local chain = {ch}
  while vk do
    local pc = piece(vk, ch)
    if not pc then break end
    chain[#chain + 1] = pc
    vk = nil
    if string.sub(pc, 1, 1) == 'D' then
      local _, r = rd(pc, 2)
      vk = rd(pc, r)
    end
  end
  chains[#chains + 1] = chain
end

local refs, n = {}, #rec
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


def _frames(buf: bytes) -> Iterator[bytes]:
    pos, n = 0, len(buf)
    while pos < n:
        data, pos = _read(buf, pos)
        yield data


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
        raise ValueError(f"unknown serialization type code {code!r}")
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
    raise ValueError(f"unknown version key {key!r}")


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


def _b(value: Any) -> bytes:
    """A reply element as bytes (a client with decode_responses would give str)."""
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


def _parse_head(head: bytes) -> _Head:
    frames = list(_frames(head))
    if len(frames) != 6:
        raise CorruptThreadError("checkpoint head has an unexpected shape")
    versions_b, parent, ck_code, ck_data, md_code, md_data = frames
    it = _frames(versions_b)
    versions = [(ch.decode(), vk.decode()) for ch, vk in zip(it, it, strict=True)]
    return _Head(
        versions,
        parent.decode(),
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
        tid, path = task_id.decode(), task_path.decode()
        writes.extend(_StoredWrite(tid, path, int(idx), payload) for idx, payload in zip(it, it))
    return head, writes


def _piece_base(piece: bytes) -> str | None:
    """The version key a delta piece extends, None for a full piece."""
    if piece[:1] != b"D":
        return None
    _, pos = _skip(piece, 1)
    base, _ = _read(piece, pos)
    return base.decode()


def _piece_digest(piece: bytes) -> bytes:
    digest, _ = _read(piece, 1)
    return digest


def _assemble(pieces: Sequence[bytes]) -> tuple[str, bytes]:
    """The typed value from a chain of pieces, newest first, ending with a full piece."""
    full = pieces[-1]
    if full[:1] != b"F":
        raise CorruptThreadError("a delta chain does not end with a full value")
    _, pos = _skip(full, 1)
    code, pos = _read(full, pos)
    if len(pieces) == 1:
        return _type_name(code), full[pos:]
    header = _array_header(full[pos : pos + 5])
    if code != b"m" or header is None:
        raise CorruptThreadError("a delta extends a value that is not a list")
    total, header_len = header
    parts: list[bytes | memoryview] = [memoryview(full)[pos + header_len :]]
    for piece in reversed(pieces[:-1]):
        if piece[:1] != b"D":
            raise CorruptThreadError("a full value in the middle of a delta chain")
        _, pos = _skip(piece, 1)
        _, pos = _skip(piece, pos)
        count, pos = _read(piece, pos)
        total += int(count)
        parts.append(memoryview(piece)[pos:])
    return "msgpack", _array_prefix(total) + b"".join(parts)


@dataclass(slots=True)
class _ListState:
    """What the saver last saw of a list channel: delta detection by identity."""

    verkey: str
    items: list[Any]
    digest: bytes


class _DeltaCache:
    """Per thread (LRU), per (namespace, channel): the last known list version."""

    def __init__(self, max_threads: int) -> None:
        self._max = max_threads
        self._threads: OrderedDict[str, dict[tuple[str, str], _ListState]] = OrderedDict()
        self._lock = threading.Lock()  # the sync API is called from LangGraph's threads

    def get(self, thread_id: str, ns: str, channel: str) -> _ListState | None:
        with self._lock:
            states = self._threads.get(thread_id)
            if states is None:
                return None
            self._threads.move_to_end(thread_id)
            return states.get((ns, channel))

    def update(
        self, thread_id: str, ns: str, states: Mapping[str, _ListState | None]
    ) -> None:
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
                if state is None:
                    known.pop((ns, channel), None)
                else:
                    known[(ns, channel)] = state
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
    base_digest: bytes
    dedupe: bool
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


class _ThreadData:
    """A whole thread hash (HGETALL), for `list`."""

    def __init__(self, fields: Mapping[bytes, bytes]) -> None:
        self.records: dict[str, dict[str, bytes]] = {}
        self._versions: dict[tuple[str, str], bytes] = {}
        self._parsed: dict[tuple[str, str], dict[str, bytes]] = {}
        for name, value in fields.items():
            kind, _, rest = name.partition(b"\x00")
            ns_b, _, ident = rest.partition(b"\x00")
            if kind == b"c":
                self.records.setdefault(ns_b.decode(), {})[ident.decode()] = value
            elif kind == b"v":
                self._versions[(ns_b.decode(), ident.decode())] = value

    def piece(self, ns: str, verkey: str, channel: str) -> bytes | None:
        parsed = self._parsed.get((ns, verkey))
        if parsed is None:
            raw = self._versions.get((ns, verkey), b"")
            it = _frames(raw)
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
        ttl_seconds: without a guard deadline, expire a thread this long after its last
            write (refreshed on every write); with one, the sooner of the two applies.
        serde: serializer (default: LangGraph's `JsonPlusSerializer`).
        delta_cache_threads: how many threads' last list values to remember for deltas.
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
    ) -> None:
        super().__init__(serde=serde)
        if redis is None and sync_redis is None:
            raise ValueError("RedisSessionSaver needs `redis` (async) and/or `sync_redis`")
        for client in (redis, sync_redis):
            if client is not None and client.get_encoder().decode_responses:
                raise ValueError(
                    "RedisSessionSaver needs a client with decode_responses=False: "
                    "checkpoints are binary"
                )
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive (or None for no TTL)")
        self.redis = redis
        self.sync_redis = sync_redis
        self.guarded = guarded
        self.ttl_seconds = ttl_seconds
        self._ttl_ms = "0" if ttl_seconds is None else str(max(1, round(ttl_seconds * 1000)))
        self._cache = _DeltaCache(delta_cache_threads)
        self._owns_clients = False
        thread_prefix, _, thread_suffix = keys.thread(_SEP).partition(_SEP)
        self._thread_prefix, self._thread_suffix = thread_prefix, thread_suffix
        self._thread_pattern = _glob_escape(thread_prefix) + "*" + _glob_escape(thread_suffix)
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
    def from_url(cls, url: str, **kw: Any) -> RedisSessionSaver:
        """A saver with its own sync and async clients for `url` (closed by `aclose`)."""
        saver = cls(
            aioredis.Redis.from_url(url), sync_redis=redis.Redis.from_url(url), **kw
        )
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

    def _write_keys(self, thread_id: str) -> tuple[list[str], list[bytes | str]]:
        """KEYS and the common ARGV prefix of the write scripts."""
        guarded = self._is_guarded(thread_id)
        return (
            [keys.thread(thread_id), keys.session_meta(thread_id)],
            ["1" if guarded else "0", self._ttl_ms, keys.EXPIRES_AT_FIELD],
        )

    def _thread_id_of(self, key: bytes) -> str | None:
        text = key.decode()
        if not (text.startswith(self._thread_prefix) and text.endswith(self._thread_suffix)):
            return None
        return text[len(self._thread_prefix) : len(text) - len(self._thread_suffix)]

    # ------------------------------------------------------------------ put

    def _piece(
        self, thread_id: str, ns: str, channel: str, verkey: str, value: Any, deltas: bool
    ) -> _Piece:
        if deltas and isinstance(value, list):
            prev = self._cache.get(thread_id, ns, channel)
            if (
                prev is not None
                and prev.verkey != verkey
                and len(value) >= len(prev.items)
                and all(map(operator.is_, prev.items, value))
            ):
                # Same objects up front: serialize only what was appended.
                type_, data = self.serde.dumps_typed(value[len(prev.items) :])
                header = _array_header(data) if type_ == "msgpack" else None
                if header is not None:
                    count, header_len = header
                    items = bytes(data[header_len:])
                    digest = _digest(prev.digest + items)
                    piece = (
                        b"D"
                        + _frame(digest)
                        + _frame(prev.verkey.encode())
                        + _frame(str(count).encode())
                        + items
                    )
                    state = _ListState(verkey, list(value), digest)
                    return _Piece(channel, verkey, piece, prev.verkey, prev.digest, True, state)
        type_, raw = self.serde.dumps_typed(value)
        data = bytes(raw)
        digest, state = b"", None
        if type_ == "msgpack" and isinstance(value, list) and _array_header(data) is not None:
            digest = _digest(data)
            state = _ListState(verkey, list(value), digest)
        piece = b"F" + _frame(digest) + _frame(_type_code(type_)) + data
        return _Piece(channel, verkey, piece, "", b"", state is not None, state)

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
        ck_type, ck_data = self.serde.dumps_typed(body)
        md_type, md_data = self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
        versions = b"".join(
            _frame(ch.encode()) + _frame(_verkey(v).encode())
            for ch, v in checkpoint["channel_versions"].items()
        )
        head = (
            _frame(versions)
            + _frame(parent.encode())
            + _frame(_type_code(ck_type))
            + _frame(bytes(ck_data))
            + _frame(_type_code(md_type))
            + _frame(bytes(md_data))
        )
        pieces: list[_Piece] = []
        cleared: list[str] = []
        for channel, version in new_versions.items():
            if channel in values:
                pieces.append(
                    self._piece(thread_id, ns, channel, _verkey(version), values[channel], deltas)
                )
            else:  # an empty channel: nothing to store, absence reads the same
                cleared.append(channel)

        keys_, args = self._write_keys(thread_id)
        cpre = f"c{_SEP}{ns}{_SEP}"
        args += [
            cpre + cid,
            f"l{_SEP}{ns}",
            cid,
            cpre,
            parent,
            f"v{_SEP}{ns}{_SEP}",
            head,
            str(len(pieces)),
        ]
        for piece in pieces:
            args += [
                piece.channel,
                piece.verkey,
                piece.data,
                piece.base_verkey,
                piece.base_digest,
                "1" if piece.dedupe else "0",
            ]
        args.append(str(_MIN_REF_BYTES))
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
        }
        return _PutPlan(thread_id, ns, keys_, args, pieces, cleared, next_config)

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
            return False
        if status == _APPLIED_NO_DEADLINE:
            log.warning("session %s has no valid %s", plan.thread_id, keys.EXPIRES_AT_FIELD)
        states: dict[str, _ListState | None] = dict.fromkeys(plan.cleared)
        for piece in plan.pieces:
            # a version already stored keeps its first value: don't assume ours
            states[piece.channel] = None if skipped else piece.state
        self._cache.update(plan.thread_id, plan.ns, states)
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
        return plan.next_config

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
        args += [f"c{_SEP}{ns}{_SEP}{cid}", task_id, task_path, str(len(writes))]
        for idx, (channel, value) in enumerate(writes):
            type_, data = self.serde.dumps_typed(value)
            payload = b"V" + _frame(channel.encode()) + _frame(_type_code(type_)) + bytes(data)
            args += [str(WRITES_IDX_MAP.get(channel, idx)), payload]
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
        """Async `put_writes`."""
        thread_id, keys_, args = self._plan_put_writes(config, writes, task_id, task_path)
        self._after_put_writes(thread_id, await self._arun("put_writes", keys_, args))

    # ------------------------------------------------------------------ reads

    def _get_args(self, config: RunnableConfig) -> tuple[str, str, list[str], list[str]]:
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        ns: str = conf.get("checkpoint_ns", "") or ""
        cid = get_checkpoint_id(config) or ""
        args = [f"c{_SEP}{ns}{_SEP}", f"v{_SEP}{ns}{_SEP}", f"l{_SEP}{ns}", cid]
        return thread_id, ns, [keys.thread(thread_id)], args

    def _parse_get(self, thread_id: str, ns: str, reply: Any) -> CheckpointTuple | None:
        if not reply:
            return None
        cid_b, record, chains_r, refs_r = reply
        chains = {
            _b(chain[0]).decode(): [_b(piece) for piece in chain[1:]] for chain in chains_r
        }
        refs = {(_b(vk).decode(), _b(ch).decode()): _b(piece) for vk, ch, piece in refs_r}
        return self._make_tuple(
            thread_id,
            ns,
            _b(cid_b).decode(),
            _b(record),
            lambda channel, verkey: chains.get(channel, []),
            lambda verkey, channel: refs.get((verkey, channel)),
            remember=True,
        )

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
            digest = _piece_digest(pieces[0])  # only list pieces have one
            if remember and digest and isinstance(value, list):
                # the next put of this thread can store just what gets appended to it
                states[channel] = _ListState(verkey, list(value), digest)
        if remember:
            self._cache.update(thread_id, ns, states)

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
            return channel, self.serde.loads_typed((_type_name(code), payload[pos:]))
        if payload[:1] != b"R":
            raise CorruptThreadError("unknown pending write payload")
        verkey, pos = _read(payload, pos)
        header, pos = _read(payload, pos)
        offset, pos = _read(payload, pos)
        length, pos = _read(payload, pos)
        piece = piece_of(verkey.decode(), channel)
        start, end = int(offset), int(offset) + int(length)
        if piece is None or len(piece) < end:
            raise CorruptThreadError("a pending write refers to a missing channel value")
        return channel, self.serde.loads_typed(("msgpack", header + piece[start:end]))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of `config` (its `checkpoint_id`, else the latest): one round trip."""
        thread_id, ns, keys_, args = self._get_args(config)
        return self._parse_get(thread_id, ns, self._run("get", keys_, args))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async `get_tuple`."""
        thread_id, ns, keys_, args = self._get_args(config)
        return self._parse_get(thread_id, ns, await self._arun("get", keys_, args))

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
        if config is not None:
            thread_keys: Iterable[Any] = [keys.thread(config["configurable"]["thread_id"])]
        else:
            thread_keys = _unique(client.scan_iter(match=self._thread_pattern, count=_SCAN_COUNT))
        remaining = limit
        for key in thread_keys:
            thread_id = self._thread_id_of(_b(key))
            if thread_id is None:
                continue
            fields = client.hgetall(key)
            for item in self._list_thread(thread_id, fields, config, filter, before):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item
            if remaining is not None and remaining <= 0:
                return

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
            fields = await client.hgetall(key)
            for item in self._list_thread(thread_id, fields, config, filter, before):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item
            if remaining is not None and remaining <= 0:
                return

    # ------------------------------------------------------------------ delete, versions

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread: one `DEL` of its hash."""
        self._cache.forget(thread_id)
        self._sync_client().delete(keys.thread(thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async `delete_thread`."""
        self._cache.forget(thread_id)
        await self._async_client().delete(keys.thread(thread_id))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Short increasing versions: "<digits><n>.<8 hex>", e.g. "15.0c2f9a41".

        The number is prefixed by its digit count so plain string comparison (what
        LangGraph uses) orders versions correctly up to 10**9. The random part keeps two
        branches forked from one checkpoint from ever naming different values alike. They
        are stored ~10 times per checkpoint, so they are kept far shorter than
        InMemorySaver's 50-character ones.
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
                number = int(float(head)) if head else 0
        digits = str(number + 1)
        return f"{len(digits)}{digits}.{random.getrandbits(32):08x}"


def _glob_escape(text: str) -> str:
    """`text` matched literally in a Redis glob pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _unique(items: Iterable[Any]) -> Iterator[Any]:
    """SCAN may return a key twice."""
    seen: set[bytes] = set()
    for item in items:
        key = _b(item)
        if key not in seen:
            seen.add(key)
            yield item
