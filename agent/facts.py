"""Facts about the user that are worth keeping across sessions: their name and units."""

from __future__ import annotations

from agent.models.understanding import parse_name, parse_units
from session_policy.policy import UserFacts


def extract_facts(text: str) -> UserFacts:
    """The name ("I'm Alice") and preferred units ("in Fahrenheit") a message states."""
    facts = UserFacts()
    name = parse_name(text)
    if name:
        facts["name"] = name
    units = parse_units(text)
    if units:
        facts["units"] = units
    return facts


def describe_facts(facts: UserFacts) -> str:
    """The line the model reads about the user, e.g. "name: Alice; preferred units: imperial"."""
    parts = []
    if facts.get("name"):
        parts.append(f"name: {facts['name']}")
    if facts.get("units"):
        parts.append(f"preferred units: {facts['units']}")
    return "; ".join(parts)
