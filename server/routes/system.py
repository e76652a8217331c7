"""`/system/*` for operators, and the `/health` and `/ready` probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.auth import require_admin
from server.compat import health_report, system_fields
from server.deps import ServiceDep
from server.housekeeping import sweep_report
from server.monitoring import memory_report, status_report
from server.schemas import CleanupResponse

# In AUTH_MODE=token these need an admin token; /health and /ready stay open for probes.
router = APIRouter(prefix="/system", tags=["system"], dependencies=[Depends(require_admin)])
probes = APIRouter(tags=["system"])


@router.get("/memory")
async def memory(service: ServiceDep) -> dict[str, Any]:
    """Redis memory (used, peak, maxmemory), keys by kind, sessions, bytes per session,
    and this process's resident memory."""
    return {**await memory_report(service), **system_fields(service)}


@router.post("/cleanup", response_model=CleanupResponse)
async def cleanup(service: ServiceDep) -> dict[str, Any]:
    """Run one cleanup sweep now (as the timer does every CLEANUP_INTERVAL) and answer the
    sessions it ended. Counted in `/system/status`'s cleanup statistics like any run."""
    return await sweep_report(service.cleanup)


@router.get("/status")
async def status(service: ServiceDep) -> dict[str, Any]:
    """`ok` on Redis, `degraded` on the in-memory fallback; configuration and statistics."""
    return {**await status_report(service), **system_fields(service)}


@probes.get(
    "/metrics",
    dependencies=[Depends(require_admin)],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(service: ServiceDep) -> PlainTextResponse:
    """Prometheus metrics: turns, turn latency, sessions ended by reason, cleanup runs and
    duration, active sessions, Redis used memory, storage mode."""
    await service.metrics.refresh(service.storage)
    return PlainTextResponse(
        generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@probes.get("/health")
async def health(service: ServiceDep) -> dict[str, Any]:
    """Liveness: the process answers (200). The body is the original API's: `status:
    "healthy"`, the time, and which features are on."""
    return health_report(service)


@probes.get("/ready", responses={503: {"description": "No storage can take sessions."}})
async def ready(service: ServiceDep) -> Any:
    """Readiness: sessions can be stored (Redis, or the in-memory fallback)."""
    return JSONResponse({"ready": True, "storageMode": service.storage.mode})
