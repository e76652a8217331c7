"""Ablation: `RedisSessionSaver` plus an in-process cache of the latest checkpoint.

The service's saver reads a session's whole thread from Redis and deserializes it at every
turn. `CachedSessionSaver` measures what keeping the last checkpoint a process stored or read
(per thread, LRU) would buy instead: a read then asks Redis, in one round trip, whether the
thread still holds that record and nothing else (same record size, no pending writes), and
returns a copy of the held checkpoint without deserializing it; anything else reads the thread
as the plain saver does. Only the root namespace's latest checkpoint is held.

It lives here, not in `session_policy/`: the bench's ablation rows show its turn time and the
process memory it holds per session, and the service runs without it (see README,
Performance). The size check is what a real cache would have to make airtight (a record of
the same size written by another process passes it).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)

from session_policy import keys
from session_policy.checkpointer import RedisSessionSaver, thread_tuples, versioned_values

RECORD = b"c\0"  # the root namespace's checkpoint field (see session_policy.checkpointer)


def copy_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """A copy whose dicts and lists are its own; the values in them are shared."""
    copied: dict[str, Any] = dict(checkpoint)
    copied["channel_values"] = {
        channel: list(value) if isinstance(value, list) else value
        for channel, value in checkpoint["channel_values"].items()
    }
    copied["channel_versions"] = dict(checkpoint["channel_versions"])
    copied["versions_seen"] = {k: dict(v) for k, v in checkpoint["versions_seen"].items()}
    return copied  # type: ignore[return-value]


def _copy(item: CheckpointTuple) -> CheckpointTuple:
    return item._replace(
        checkpoint=copy_checkpoint(item.checkpoint),
        metadata=item.metadata.copy(),
        pending_writes=[],
    )


class CachedSessionSaver(RedisSessionSaver):
    """`RedisSessionSaver` holding the latest root checkpoint of `threads` threads (LRU)."""

    def __init__(self, redis: aioredis.Redis, *, threads: int = 256) -> None:
        super().__init__(redis)
        self.threads = threads
        self._held: OrderedDict[str, tuple[int, CheckpointTuple]] = OrderedDict()
        self._sizes: dict[tuple[str, str], int] = {}  # record sizes, from _record to aput

    def held_threads(self) -> int:
        return len(self._held)

    def forget_all(self) -> None:
        self._held.clear()

    def _hold(self, thread_id: str, size: int, item: CheckpointTuple) -> None:
        self._held[thread_id] = (size, _copy(item))
        self._held.move_to_end(thread_id)
        while len(self._held) > self.threads:
            self._held.popitem(last=False)

    def _record(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> bytes:
        record = super()._record(config, checkpoint, metadata)
        self._sizes[(str(config["configurable"]["thread_id"]), checkpoint["id"])] = len(record)
        return record

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored = await super().aput(config, checkpoint, metadata, new_versions)
        thread_id = str(config["configurable"]["thread_id"])
        size = self._sizes.pop((thread_id, checkpoint["id"]))
        if config["configurable"].get("checkpoint_ns", ""):
            return stored
        parent_id = get_checkpoint_id(config)
        item = CheckpointTuple(
            config=stored,
            checkpoint=versioned_values(checkpoint),
            metadata=get_checkpoint_metadata(config, metadata),
            parent_config=(
                {**stored, "configurable": {**stored["configurable"], "checkpoint_id": parent_id}}
                if parent_id
                else None
            ),
            pending_writes=[],
        )
        self._hold(thread_id, size, item)
        return stored

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        if conf.get("checkpoint_ns", "") or get_checkpoint_id(config):
            return await super().aget_tuple(config)
        self._bind_loop()
        thread_id = str(conf["thread_id"])
        key = keys.thread(thread_id)
        held = self._held.get(thread_id)
        if held is not None:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hstrlen(key, RECORD)
                pipe.hlen(key)
                size, count = await pipe.execute()
            if (size, count) == (held[0], 1):
                self._held.move_to_end(thread_id)
                return _copy(held[1])
        fields = await self.redis.hgetall(key)
        found = thread_tuples(self.serde, thread_id, fields, "").get("")
        if found is not None and len(fields) == 1:
            self._hold(thread_id, len(fields[RECORD]), found)
        else:
            self._held.pop(thread_id, None)
        return found

    async def adelete_thread(self, thread_id: str) -> None:
        self._held.pop(thread_id, None)
        await super().adelete_thread(thread_id)
