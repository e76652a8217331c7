"""Figures for `/system/memory` and `/system/status`, read without KEYS or full scans.

On a Redis Cluster, `/system/memory`'s totals are summed over the primaries (replicas hold
copies), and `nodes` has a row per node, primaries first (one row for a single Redis).
"""

from __future__ import annotations

import platform
import resource
import time
from pathlib import Path
from typing import Any

from server.service import VERSION, Service
from session_policy import keys
from session_policy.memory_store import MemorySessionStore
from session_policy.redis_client import NodeInfo, node_infos, primaries_total

SAMPLE = 50  # sessions sampled for bytes per session


def process_rss_bytes() -> int:
    """Resident memory of this process (Linux: now; elsewhere: the peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


def _human(size: float) -> str:
    """Bytes as Redis's INFO writes them (`0B`, `1.50M`), for sums over a cluster."""
    if size < 1024:
        return f"{int(size)}B"
    size /= 1024
    for unit in ("K", "M", "G"):
        if size < 1024:
            return f"{size:.2f}{unit}"
        size /= 1024
    return f"{size:.2f}T"


async def _redis_figures(service: Service) -> dict[str, Any]:
    storage = service.storage
    client, index = storage.client, storage.redis_store
    if client is None or index is None or not storage.reads_redis:
        return {"available": False, "error": storage.last_error}
    try:
        nodes = await node_infos(client, "memory", "keyspace")
        active = await index.active_count()
        sample = await index.sample(SAMPLE)
        sizes, counts = [], []
        for session_id in sample:
            thread = await client.memory_usage(keys.thread(session_id)) or 0
            meta = await client.memory_usage(keys.session_meta(session_id)) or 0
            sizes.append(thread + meta)
            counts.append(
                int(await client.hget(keys.session_meta(session_id), "conversationCount") or 0)
            )
    except Exception as error:
        if not storage.unavailable(error):
            raise
        return {"available": False, "error": storage.last_error}
    node_keys = {row.name: _keys(row.info) for row in nodes}
    total_keys = sum(node_keys[row.name] for row in nodes if row.role == "primary")
    average = sum(sizes) / len(sizes) if sizes else 0
    conversations = round(sum(counts) / len(counts) * active) if counts else 0
    return {
        "available": True,
        "writable": storage.writable,
        **_memory_totals(nodes),
        "keys": {
            "total": total_keys,
            "sessionThreads": active,
            "sessionMeta": active,
            "other": max(total_keys - 2 * active, 0),
        },
        "activeSessions": active,
        "conversationsHeld": conversations,
        "averageBytesPerSession": round(average),
        "sampledSessions": len(sizes),
        "nodes": [_node_row(row, node_keys[row.name]) for row in nodes],
    }


def _keys(info: dict[str, Any]) -> int:
    """Keys in every database of one node's INFO keyspace (`db0: {keys: ...}`)."""
    return sum(
        int(db.get("keys", 0))
        for name, db in info.items()
        if name.startswith("db") and isinstance(db, dict)
    )


def _memory_totals(memory: list[NodeInfo]) -> dict[str, Any]:
    """Used, peak and maxmemory of the data set: one Redis's figures, or on a cluster the
    sum over its primaries (maxmemory 0, unlimited, if any primary has no limit)."""
    primaries = [row.info for row in memory if row.role == "primary"]
    if len(primaries) == 1:
        info = primaries[0]
        return {
            "usedMemory": info["used_memory"],
            "usedMemoryHuman": info["used_memory_human"],
            "usedMemoryPeak": info["used_memory_peak"],
            "usedMemoryPeakHuman": info["used_memory_peak_human"],
            "maxmemory": info["maxmemory"],
            "maxmemoryHuman": info["maxmemory_human"],
        }
    used = primaries_total(memory, "used_memory")
    peak = primaries_total(memory, "used_memory_peak")
    limits = [int(info["maxmemory"]) for info in primaries]
    limit = sum(limits) if all(limits) else 0
    return {
        "usedMemory": used,
        "usedMemoryHuman": _human(used),
        "usedMemoryPeak": peak,
        "usedMemoryPeakHuman": _human(peak),
        "maxmemory": limit,
        "maxmemoryHuman": _human(limit),
    }


def _node_row(row: NodeInfo, node_keys: int) -> dict[str, Any]:
    """One node of `/system/memory`'s `nodes` (one row for a single Redis)."""
    if row.error is not None:
        return {"node": row.name, "role": row.role, "available": False, "error": row.error}
    return {
        "node": row.name,
        "role": row.role,
        "available": True,
        "usedMemory": row.info["used_memory"],
        "usedMemoryHuman": row.info["used_memory_human"],
        "maxmemory": row.info["maxmemory"],
        "keys": node_keys,
    }


async def memory_report(service: Service) -> dict[str, Any]:
    memory_store = service.storage.memory.sessions
    memory_sessions = memory_store.sessions if isinstance(memory_store, MemorySessionStore) else []
    rss = process_rss_bytes()
    return {
        "storageMode": service.storage.mode,
        "redis": await _redis_figures(service),
        "memoryFallback": {
            "activeSessions": len(memory_sessions),
            "conversationsHeld": sum(s.conversation_count for s in memory_sessions),
        },
        "process": {"rss": rss, "rssHuman": _human(rss)},
    }


async def status_report(service: Service) -> dict[str, Any]:
    storage = service.storage
    if storage.writable:
        # With what fails: a Redis demoted to a replica, or full, still answers PING.
        await storage.probe()
    settings = service.settings
    stats = await _session_stats(service)
    stats["cleanup"] = {
        **stats.get("cleanup", {}),
        "failedRuns": service.cleanup.failed_runs,
        "lastError": service.cleanup.last_error,
    }
    return {
        "status": storage.status,
        "reason": storage.reason,
        "version": VERSION,
        "uptime": round(time.time() - service.started_at, 3),
        "storageMode": storage.mode,
        "redis": {
            "configured": storage.redis is not None,
            "connected": storage.writable,
            "readable": storage.reads_redis,
            "pingMs": storage.ping_ms if storage.writable else None,
            "lastError": storage.last_error,
        },
        "sessionConfig": {
            "profile": settings.session_profile,
            "sessionDuration": settings.session_duration,
            "maxConversationsPerSession": settings.max_conversations_per_session,
            "inactivityTimeout": settings.inactivity_timeout,
            "cleanupInterval": settings.cleanup_interval,
            "sessionHistoryRetention": settings.session_history_retention,
            "userMemoryTtl": settings.user_memory_ttl,
            "endSessionsOnShutdown": settings.end_sessions_on_shutdown,
            "doubleTexting": settings.double_texting,
            "doubleTextingTimeout": settings.double_texting_timeout,
        },
        "sessions": stats,
        "model": service.model_name,
        "weather": service.weather_name,
    }


async def _session_stats(service: Service) -> dict[str, Any]:
    """Counters of the Redis store (shared by all processes) plus this process's memory store."""
    memory = await service.storage.memory.sessions.stats()
    storage = service.storage
    if storage.redis is None or not storage.reads_redis:
        return {**memory, "memoryFallbackActive": memory["activeSessions"]}
    try:
        shared = await storage.redis.sessions.stats()
    except Exception as error:
        if not storage.unavailable(error):
            raise
        return {**memory, "memoryFallbackActive": memory["activeSessions"]}
    for reason, count in memory["endedByReason"].items():
        shared["endedByReason"][reason] += count
    shared["memoryFallbackActive"] = memory["activeSessions"]
    return shared
