"""Fields the original Node.js API answered that ours would not otherwise: kept so its
clients keep working (see the README's "Migrating from the Node.js service").

Where a field exists in both and differs, ours wins when its value carries information
(`/system/status`'s `ok`/`degraded`, durations in seconds, real session ids); `/health`'s
`status` takes the original's `"healthy"`, since liveness is the 200 itself either way.
"""

from __future__ import annotations

from typing import Any

from server.service import Service
from session_policy.models import iso, now_ms


def features(service: Service) -> dict[str, bool]:
    """The original's `features`: `langchain` is a real chat model (not the offline one),
    `redis` is sessions stored in Redis now, `weatherAPI` is forecasts from Open-Meteo."""
    return {
        "langchain": service.model_name != "offline",
        "redis": service.storage.writable,
        "weatherAPI": service.weather_name != "simulated",
        "sessionManagement": True,
    }


def health_report(service: Service) -> dict[str, Any]:
    """The original's `/health` body: `{status: "healthy", timestamp, features}`."""
    return {"status": "healthy", "timestamp": iso(now_ms()), "features": features(service)}


def system_fields(service: Service) -> dict[str, Any]:
    """What the original's `/system/memory` and `/system/status` added to their figures."""
    return {"success": True, "timestamp": iso(now_ms()), "features": features(service)}
