"""Reference points for the turn benchmark: what a saver costs at the very least.

`ReferenceSaver` keeps each thread's latest checkpoint by reference: no serialization, no
copy, no I/O (it is not a usable saver: it shares objects with the runs and forgets
history). What a turn costs on it is LangGraph's own checkpointing work, so
`AsyncRedisSaver ÷ ReferenceSaver` is the largest speed-up any saver could show. With
`round_trip` (a Redis client), each read and each write also waits for one Redis `PING`:
the floor of a saver that asks Redis once per read and once per write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)


class ReferenceSaver(BaseCheckpointSaver[str]):
    """The latest checkpoint of each thread, by reference (see the module docstring)."""

    def __init__(self, round_trip: aioredis.Redis | None = None) -> None:
        super().__init__()
        self.round_trip = round_trip
        self._latest: dict[tuple[str, str], CheckpointTuple] = {}

    async def _wait(self) -> None:
        if self.round_trip is not None:
            await self.round_trip.ping()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self._wait()
        conf = config["configurable"]
        found = self._latest.get((conf["thread_id"], conf.get("checkpoint_ns", "")))
        wanted = get_checkpoint_id(config)
        if found is None or (wanted and found.checkpoint["id"] != wanted):
            return None
        return found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._wait()
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        saved: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        parent = config if conf.get("checkpoint_id") else None
        self._latest[(thread_id, ns)] = CheckpointTuple(saved, checkpoint, metadata, parent, [])
        return saved

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._wait()

    async def adelete_thread(self, thread_id: str) -> None:
        for key in [k for k in self._latest if k[0] == thread_id]:
            del self._latest[key]
