"""The latest checkpoint of recently used session threads, kept in process as live objects.

A session's turn starts by reading its thread's latest checkpoint. Rebuilding it from Redis
means deserializing the whole conversation (most of a turn's persistence cost), although
the process that ran the previous turn still holds those very objects. So the saver keeps,
per thread and namespace (LRU), the checkpoint it last stored or read, and a read asks
Redis only whether that checkpoint is still the latest one, unchanged (same id, same
record size: no pending writes added since). Redis stays the source of truth: a turn
served by another process, an ended session or an expired thread all make the check fail,
and the checkpoint is read in full.

Entries are copied in and out (dicts and lists, not the messages themselves): LangGraph
updates a checkpoint's version maps in place after saving it, and a run must not change
what the next run reads. Messages are shared, as in the rest of LangGraph: a message is not
edited in place once in the state (a changed message is a new object with the same id).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple

DEFAULT_HOT_THREADS = 256


@dataclass(frozen=True, slots=True)
class HotCheckpoint:
    """A checkpoint as stored, and the size of its record in Redis when it was stored."""

    checkpoint_id: str
    record_size: int
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    parent_config: RunnableConfig | None

    def as_tuple(self, thread_id: str, ns: str) -> CheckpointTuple:
        """A fresh copy, as a read returns it (no pending writes: the record has none)."""
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": self.checkpoint_id,
                }
            },
            checkpoint=copy_checkpoint(self.checkpoint),
            metadata=self.metadata.copy(),
            parent_config=self.parent_config,
            pending_writes=[],
        )


def copy_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """A copy whose dicts and lists are its own; the values in them are shared."""
    copied = dict(checkpoint)
    copied["channel_values"] = {
        channel: list(value) if isinstance(value, list) else value
        for channel, value in checkpoint["channel_values"].items()
    }
    copied["channel_versions"] = dict(checkpoint["channel_versions"])
    copied["versions_seen"] = {
        node: dict(seen) for node, seen in checkpoint["versions_seen"].items()
    }
    if "updated_channels" in checkpoint and checkpoint["updated_channels"] is not None:
        copied["updated_channels"] = list(checkpoint["updated_channels"])
    return copied  # type: ignore[return-value]


class HotCheckpoints:
    """LRU of thread id -> {namespace: `HotCheckpoint`}, bounded to `max_threads` threads."""

    def __init__(self, max_threads: int = DEFAULT_HOT_THREADS) -> None:
        self.max_threads = max_threads
        self._threads: OrderedDict[str, dict[str, HotCheckpoint]] = OrderedDict()
        self._lock = threading.Lock()  # the sync API runs in LangGraph's worker threads

    def get(self, thread_id: str, ns: str) -> HotCheckpoint | None:
        with self._lock:
            entries = self._threads.get(thread_id)
            if entries is None:
                return None
            self._threads.move_to_end(thread_id)
            return entries.get(ns)

    def remember(self, thread_id: str, ns: str, entry: HotCheckpoint) -> None:
        if self.max_threads <= 0:
            return
        with self._lock:
            self._threads.setdefault(thread_id, {})[ns] = entry
            self._threads.move_to_end(thread_id)
            while len(self._threads) > self.max_threads:
                self._threads.popitem(last=False)

    def forget(self, thread_id: str, ns: str | None = None) -> None:
        """Drop the thread's entry for `ns`, or all of its entries."""
        with self._lock:
            if ns is None:
                self._threads.pop(thread_id, None)
            elif thread_id in self._threads:
                self._threads[thread_id].pop(ns, None)

    def __len__(self) -> int:
        return len(self._threads)
