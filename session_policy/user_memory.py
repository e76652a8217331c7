"""Cross-session user facts on Redis: a small LangGraph `BaseStore` of JSON values with TTLs.

One Redis string per item, key `wa:store:<namespace parts joined by />:<key>`, expiring
after its TTL (USER_MEMORY_TTL by default). Only `get` and `put` are supported: that is
all the agent needs to remember a user's name and units, and it keeps every call to one
round trip. (langgraph-checkpoint-redis's RedisStore needs a search index and did not
read back its own writes with the redisvl release pinned here.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from langgraph.store.base import BaseStore, GetOp, Item, Op, PutOp, Result, TTLConfig

from session_policy.keys import PREFIX
from session_policy.redis_client import RedisClient


def item_key(namespace: tuple[str, ...], key: str) -> str:
    return f"{PREFIX}:store:{'/'.join(namespace)}:{key}"


def _encode(op: PutOp, now: datetime) -> str:
    return json.dumps({"value": op.value, "updated_at": now.isoformat()}, separators=(",", ":"))


def _decode(op: GetOp, raw: bytes | str | None) -> Item | None:
    if raw is None:
        return None
    data = json.loads(raw)
    stamp = datetime.fromisoformat(data["updated_at"])
    return Item(
        value=data["value"],
        key=op.key,
        namespace=op.namespace,
        created_at=stamp,
        updated_at=stamp,
    )


def _supported(ops: Iterable[Op]) -> list[GetOp | PutOp]:
    checked: list[GetOp | PutOp] = []
    for op in ops:
        if not isinstance(op, GetOp | PutOp):
            raise NotImplementedError(f"RedisUserStore supports get and put only, not {op!r}")
        checked.append(op)
    return checked


class RedisUserStore(BaseStore):
    """Get/put store with per-item TTL (minutes, as LangGraph's TTL settings count them)."""

    supports_ttl = True

    def __init__(
        self,
        redis_client: RedisClient,
        *,
        sync_client: redis.Redis | None = None,
        default_ttl_minutes: float | None = None,
    ) -> None:
        self.redis = redis_client
        self.sync_redis = sync_client
        self.ttl_config = TTLConfig(default_ttl=default_ttl_minutes, refresh_on_read=False)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        checked = _supported(ops)
        now = datetime.now(UTC)
        async with self.redis.pipeline(transaction=False) as pipe:
            for op in checked:
                self._queue(pipe, op, now)
            replies = await pipe.execute()
        return [self._result(op, reply) for op, reply in zip(checked, replies, strict=True)]

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        if self.sync_redis is None:
            raise RuntimeError("RedisUserStore was created without a sync client: use the a* API")
        checked = _supported(ops)
        now = datetime.now(UTC)
        with self.sync_redis.pipeline(transaction=False) as pipe:
            for op in checked:
                self._queue(pipe, op, now)
            replies = pipe.execute()
        return [self._result(op, reply) for op, reply in zip(checked, replies, strict=True)]

    @staticmethod
    def _queue(pipe: Any, op: GetOp | PutOp, now: datetime) -> None:
        key = item_key(op.namespace, op.key)
        if isinstance(op, GetOp):
            pipe.get(key)
        elif op.value is None:
            pipe.delete(key)
        elif op.ttl is None:
            pipe.set(key, _encode(op, now))
        else:
            pipe.set(key, _encode(op, now), px=int(op.ttl * 60_000))

    @staticmethod
    def _result(op: GetOp | PutOp, reply: Any) -> Result:
        return _decode(op, reply) if isinstance(op, GetOp) else None
