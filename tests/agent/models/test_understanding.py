"""What the offline model reads out of single messages."""

from __future__ import annotations

from datetime import date

import pytest

from agent.models.understanding import (
    NOW,
    Timeframe,
    parse_name,
    parse_place,
    parse_timeframe,
    parse_units,
    understand,
)

WEDNESDAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("What's the weather in London?", "London"),
        ("weather in São Paulo today", "São Paulo"),
        ("London weather?", "London"),
        ("Is it going to rain in New York tomorrow?", "New York"),
        ("forecast for Paris, France this weekend", "Paris, France"),
        ("what about Berlin?", "Berlin"),
        ("How about the weather in Rome please", "Rome"),
        ("weather in the next 3 days", None),
        ("and tomorrow?", None),
        ("in Fahrenheit", None),
    ],
)
def test_place(text: str, place: str | None) -> None:
    assert parse_place(text) == place


def test_bare_place_only_when_allowed_and_capitalized() -> None:
    assert parse_place("Paris?") is None
    assert parse_place("Paris?", allow_bare=True) == "Paris"
    assert parse_place("and New York?", allow_bare=True) == "New York"
    assert parse_place("tell me a joke", allow_bare=True) is None


@pytest.mark.parametrize(
    ("text", "timeframe"),
    [
        ("weather in Oslo", None),
        ("weather in Oslo now", NOW),
        ("and tomorrow?", Timeframe(1, 1)),
        ("the day after tomorrow", Timeframe(2, 1)),
        ("this weekend", Timeframe(3, 2)),  # Wednesday -> Saturday and Sunday
        ("next 3 days", Timeframe(0, 3)),
        ("next three days", Timeframe(0, 3)),
        ("a 5-day forecast", Timeframe(0, 5)),
        ("next 12 days", Timeframe(0, 7)),  # capped at the 7 days we forecast
        ("this week", Timeframe(0, 7)),
        ("on Friday", Timeframe(2, 1)),
        ("on Monday", Timeframe(5, 1)),
        ("forecast for Rome", Timeframe(0, 3)),
    ],
)
def test_timeframe(text: str, timeframe: Timeframe | None) -> None:
    assert parse_timeframe(text, WEDNESDAY) == timeframe


def test_weekend_on_saturday_and_sunday() -> None:
    assert parse_timeframe("weekend", date(2026, 11, 28)) == Timeframe(0, 2)
    assert parse_timeframe("weekend", date(2026, 11, 29)) == Timeframe(0, 1)


@pytest.mark.parametrize(
    ("text", "units"),
    [("in Fahrenheit", "imperial"), ("in celsius please", "metric"), ("weather", None)],
)
def test_units(text: str, units: str | None) -> None:
    assert parse_units(text) == units


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("I'm Alice", "Alice"),
        ("hi, I am Bob", "Bob"),
        ("my name is carol", "Carol"),
        ("call me Dave", "Dave"),
        ("i'm erin", "Erin"),
        ("I'm fine thanks", None),
        ("I'm going to Paris next week", None),
        ("I am in London", None),
    ],
)
def test_name(text: str, name: str | None) -> None:
    assert parse_name(text) == name


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Hello!", "greeting"),
        ("good morning", "greeting"),
        ("I'm Alice", "introduce"),
        ("What's my name?", "ask_name"),
        ("who am I", "ask_name"),
        ("thanks!", "thanks"),
        ("what can you do?", "help"),
        ("bye", "goodbye"),
        ("What's the weather in London?", "weather"),
        ("Tell me a joke", "other"),
        ("What is the capital of France?", "other"),
        ("and tomorrow?", "weather"),  # asks for a place, there being no earlier question
    ],
)
def test_intent_without_context(text: str, intent: str) -> None:
    assert understand(text, WEDNESDAY).intent == intent


def test_follow_ups_need_context() -> None:
    assert understand("Paris?", WEDNESDAY).intent == "other"
    said = understand("Paris?", WEDNESDAY, has_weather_context=True)
    assert (said.intent, said.place, said.follow_up) == ("weather", "Paris", True)
    said = understand("in Fahrenheit", WEDNESDAY, has_weather_context=True)
    assert (said.intent, said.units, said.place) == ("weather", "imperial", None)
    assert understand("thanks!", WEDNESDAY, has_weather_context=True).intent == "thanks"


def test_a_full_question_is_not_a_follow_up() -> None:
    said = understand("What's the weather in Paris?", WEDNESDAY, has_weather_context=True)
    assert said.place == "Paris"
    assert not said.follow_up
    assert said.timeframe is None


@pytest.mark.parametrize(
    ("text", "place"),
    [("Tokyo this weekend", "Tokyo"), ("Oslo tomorrow", "Oslo"), ("Paris in Fahrenheit", "Paris")],
)
def test_a_bare_place_with_a_time_frame_or_units(text: str, place: str) -> None:
    said = understand(text, WEDNESDAY)
    assert (said.intent, said.place) == ("weather", place)
    assert understand("and tomorrow?", WEDNESDAY).place is None


def test_name_and_question_in_one_message() -> None:
    said = understand("Hi, I'm Bob. How hot is it in Cairo?", WEDNESDAY)
    assert (said.intent, said.name, said.place) == ("weather", "Bob", "Cairo")
