"""Pieces the load generator needs too, without the agent's imports (it starts faster)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# A realistic conversation: greetings, weather, forecasts, follow-ups, facts, thanks.
SCRIPT: tuple[str, ...] = (
    "Hi, I'm Dana",
    "What's the weather in London?",
    "and tomorrow?",
    "what about Paris?",
    "in Fahrenheit",
    "Tokyo this weekend?",
    "next 3 days in New York",
    "what's my name?",
    "Weather in Berlin on Friday?",
    "thanks",
)


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between the closest ranks (pct in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
