"""`RedisSessionSaver`: a LangGraph checkpointer keeping the latest checkpoint of a session's
thread in one Redis hash.

The shape is LangGraph's shallow savers (`ShallowPostgresSaver`, langgraph-redis's
`AsyncShallowRedisSaver`), only smaller: a session's thread is only ever read at its latest
checkpoint, and the service runs the graph with `durability="exit"` (one checkpoint per turn),
so a thread keeps one checkpoint per namespace and the pending writes stored against it.
Listing history, time travel and LangGraph's beta `DeltaChannel` (rebuilt from the writes
of older checkpoints) need more and are not supported.

A thread is the hash `keys.thread(thread_id)`; `<ns>` is the namespace ("" for the root graph),
and NUL separates the parts of a field name (namespaces may hold `:` and `|`, never NUL):

``c\\0<ns>``
    the checkpoint with its metadata and parent id, one value of LangGraph's serde;
``w\\0<ns>\\0<checkpoint id>\\0<task id>\\0<idx>``
    one pending write: its channel, task path and value, one value of LangGraph's serde.

Each value is the serde's `(type, bytes)` pair stored as ``type NUL bytes``. Writes go through
one Lua script each, which first checks the session's guard: no meta hash
(`keys.session_meta(thread_id)`), no write, so a late write for an ended session is dropped and
never brings its thread back; with one, the thread expires when the session's keys do (the
meta field `keys.KEEP_UNTIL_FIELD`, epoch ms). A `put` replaces the namespace's checkpoint and
drops the writes of any other checkpoint. A read is one `HGETALL`; a delete one `DEL` (the
service ends sessions with `RedisSessionStore`'s Lua, which deletes the thread with them).

The client is async only, as LangGraph's async savers: the sync methods, called from another
thread (LangGraph runs sync nodes and `graph.invoke` in worker threads), run the async ones on
the saver's event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from session_policy import keys
from session_policy.redis_client import RedisClient, decodes_responses

log = logging.getLogger(__name__)

__all__ = ["RedisSessionSaver"]

T = TypeVar("T")

# Checks the session's guard, then expires the thread with the session. KEYS: thread, session
# meta; ARGV[1]: the meta field holding the thread's keep-until (epoch ms).
_GUARD = r"""
local keep = redis.call('HGET', KEYS[2], ARGV[1])
if not keep and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local function expire()
  if keep then
    redis.call('PEXPIREAT', KEYS[1], keep)
    return 1
  end
  return 2
end
"""

# ARGV[2]: namespace, ARGV[3]: checkpoint id, ARGV[4]: the record.
_PUT = (
    _GUARD
    + r"""
local writes = 'w\0' .. ARGV[2] .. '\0'
local own = writes .. ARGV[3] .. '\0'
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #writes) == writes and string.sub(field, 1, #own) ~= own then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('HSET', KEYS[1], 'c\0' .. ARGV[2], ARGV[4])
return expire()
"""
)

# ARGV[2..]: (field, value, "1" to replace an existing write or "0" to keep it) triples.
_PUT_WRITES = (
    _GUARD
    + r"""
for i = 2, #ARGV, 3 do
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return expire()
"""
)

_DROPPED, _NO_DEADLINE = 0, 2  # script replies (1: written, expiring with the session)


class RedisSessionSaver(BaseCheckpointSaver[str]):
    """The latest checkpoint of each session thread, in one guarded Redis hash per thread.

    Args:
        redis: the async client, of one Redis or a cluster (`decode_responses=False`: values
            are binary).
        serde: serializer (default: LangGraph's `JsonPlusSerializer`).
    """

    def __init__(self, redis: RedisClient, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        if decodes_responses(redis):
            raise ValueError("RedisSessionSaver needs a client with decode_responses=False")
        self.redis = redis
        self._put = redis.register_script(_PUT)
        self._put_writes = redis.register_script(_PUT_WRITES)
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None  # taken by the first async call

    # ------------------------------------------------------------------ async API

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The namespace's latest checkpoint (None if `checkpoint_id` names another one)."""
        self._bind_loop()
        thread_id, ns = _thread_ns(config)
        fields = await self.redis.hgetall(keys.thread(thread_id))
        stored = thread_tuples(self.serde, thread_id, fields, ns)
        wanted = get_checkpoint_id(config)
        found = stored.get(ns)
        if found is None or (wanted and found.checkpoint["id"] != wanted):
            return None
        return found

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The latest checkpoint of each matching namespace (of every thread if no config)."""
        self._bind_loop()
        conf = config["configurable"] if config else {}
        only_ns: str | None = conf.get("checkpoint_ns")
        only_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        if config is not None:
            thread_ids = [conf["thread_id"]]
        else:
            found = self.redis.scan_iter(keys.THREADS)
            ids = {keys.thread_id_of(key.decode()) async for key in found}
            thread_ids = sorted(i for i in ids if i is not None)
        remaining = limit
        for thread_id in thread_ids:
            fields = await self.redis.hgetall(keys.thread(thread_id))
            for ns, item in sorted(thread_tuples(self.serde, thread_id, fields).items()):
                cid = item.checkpoint["id"]
                if (
                    (only_ns is not None and ns != only_ns)
                    or (only_id and cid != only_id)
                    or (before_id and cid >= before_id)
                    or (filter and any(item.metadata.get(k) != v for k, v in filter.items()))
                ):
                    continue
                if remaining is not None:
                    if remaining <= 0:
                        return
                    remaining -= 1
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Replace the namespace's checkpoint: one script, dropped if the session is gone."""
        self._bind_loop()
        thread_id, ns = _thread_ns(config)
        reply = await self._put(
            keys=_script_keys(thread_id),
            args=[
                keys.KEEP_UNTIL_FIELD,
                ns,
                checkpoint["id"],
                self._record(config, checkpoint, metadata),
            ],
        )
        self._note(thread_id, reply)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against a checkpoint: one script, guarded as `aput`."""
        self._bind_loop()
        thread_id, ns = _thread_ns(config)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        args: list[str | bytes] = [keys.KEEP_UNTIL_FIELD]
        for idx, (channel, value) in enumerate(writes):
            # LangGraph's rule: a special write (error, interrupt...) replaces the one before
            # it, a regular write is stored once.
            slot = WRITES_IDX_MAP.get(channel, idx)
            field = f"w\0{ns}\0{checkpoint_id}\0{task_id}\0{slot}"
            payload = _pack(self.serde.dumps_typed((channel, task_path, value)))
            args += [field, payload, "1" if slot < 0 else "0"]
        if len(args) > 1:
            self._note(thread_id, await self._put_writes(keys=_script_keys(thread_id), args=args))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread: one `DEL` of its hash."""
        self._bind_loop()
        await self.redis.delete(keys.thread(thread_id))

    # ------------------------------------------------------------------ sync API

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._wait(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        items = self.alist(config, filter=filter, before=before, limit=limit)

        async def next_item() -> CheckpointTuple:
            return await anext(items)

        while True:
            try:
                yield self._wait(next_item())
            except StopAsyncIteration:
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._wait(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._wait(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._wait(self.adelete_thread(thread_id))

    # ------------------------------------------------------------------ plumbing

    def _record(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> bytes:
        """What `aput` stores: the checkpoint (values of versioned channels), its metadata
        and its parent's id."""
        stored = versioned_values(checkpoint)
        parent_id = get_checkpoint_id(config)
        typed = self.serde.dumps_typed(
            (stored, get_checkpoint_metadata(config, metadata), parent_id)
        )
        return _pack(typed)

    def _bind_loop(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the saver's loop and wait for it, from another thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self.loop is None or running is self.loop:
            coroutine.close()
            raise asyncio.InvalidStateError(
                "RedisSessionSaver's sync methods are for other threads than its event loop's "
                "(and after its first async call): use the async ones there (ainvoke, "
                "aget_state...)"
            )
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    @staticmethod
    def _note(thread_id: str, reply: int) -> None:
        if reply == _NO_DEADLINE:
            log.warning(
                "session %s has no %s field: its thread is written without expiry",
                thread_id,
                keys.KEEP_UNTIL_FIELD,
            )
        elif reply == _DROPPED:
            log.debug("write for %s dropped: its session has ended", thread_id)


def thread_tuples(
    serde: SerializerProtocol,
    thread_id: str,
    fields: Mapping[Any, Any],
    only_ns: str | None = None,
) -> dict[str, CheckpointTuple]:
    """The stored checkpoints of a thread by namespace, with their pending writes."""
    records: dict[str, bytes] = {}
    writes: dict[str, list[tuple[str, str, bytes]]] = {}
    for raw_field, value in fields.items():
        kind, _, rest = raw_field.decode().partition("\0")
        if kind == "c":
            if only_ns is None or rest == only_ns:
                records[rest] = value
        elif kind == "w":
            ns, cid, task_id, idx = rest.split("\0")
            if only_ns is None or ns == only_ns:
                writes.setdefault(f"{ns}\0{cid}", []).append((task_id, idx, value))
    found: dict[str, CheckpointTuple] = {}
    for ns, record in records.items():
        checkpoint, metadata, parent_id = serde.loads_typed(_unpack(record))
        loaded = []
        for task_id, idx, value in writes.get(f"{ns}\0{checkpoint['id']}", []):
            channel, task_path, written = serde.loads_typed(_unpack(value))
            loaded.append((writes_sort_key(task_path, task_id, int(idx)), channel, written))
        loaded.sort(key=lambda write: write[0])
        pending = [(order[1], channel, written) for order, channel, written in loaded]
        found[ns] = CheckpointTuple(
            config=_config(thread_id, ns, checkpoint["id"]),
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=_config(thread_id, ns, parent_id) if parent_id else None,
            pending_writes=pending,
        )
    return found


def versioned_values(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint as stored: the values of the channels it has a version of."""
    versions = checkpoint["channel_versions"]
    values = {k: v for k, v in checkpoint["channel_values"].items() if k in versions}
    return {**checkpoint, "channel_values": values}


def _script_keys(thread_id: str) -> Sequence[str]:
    """KEYS of the write scripts: the thread, the session's guard."""
    return [keys.thread(thread_id), keys.session_meta(thread_id)]


def _thread_ns(config: RunnableConfig) -> tuple[str, str]:
    conf = config["configurable"]
    return str(conf["thread_id"]), conf.get("checkpoint_ns", "")


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _pack(typed: tuple[str, bytes]) -> bytes:
    """The serde's (type, bytes) as one Redis value: type, NUL, bytes."""
    return typed[0].encode() + b"\0" + typed[1]


def _unpack(value: bytes) -> tuple[str, bytes]:
    type_, _, data = value.partition(b"\0")
    return type_.decode(), data
