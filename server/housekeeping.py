"""A cleanup run on demand, for `POST /system/cleanup` and `weather-agent cleanup`."""

from __future__ import annotations

import time
from typing import Any

from session_policy.cleanup import Cleanup


async def sweep_report(cleanup: Cleanup) -> dict[str, Any]:
    """One sweep now (counted in the statistics like a timer's run), and what it ended."""
    started = time.perf_counter()
    ended = await cleanup.run_once()
    return {
        "success": True,
        "ended": [record.to_api() for record in ended],
        "endedCount": len(ended),
        "durationMs": round((time.perf_counter() - started) * 1000, 3),
    }
