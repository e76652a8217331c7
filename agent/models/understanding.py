"""What the offline model understands of a user message: intent, place, time frame, units, name.

Pure functions of the text (and today's date), so they are easy to test one by one.
The offline model combines them with the conversation so far to decide what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from agent.weather import MAX_FORECAST_DAYS, Units

Intent = Literal[
    "weather", "ask_name", "introduce", "greeting", "thanks", "help", "goodbye", "other"
]


@dataclass(frozen=True)
class Timeframe:
    """`days == 0` means current conditions; otherwise a forecast window.

    `start_day` counts from the `today` the text was read against. A frame tied to a weekday
    ("this weekend", "on Friday") also keeps that name in `anchor`, so the forecast tool can
    place it in the asked-about place's own calendar (where today may be another day). Two
    frames that cover the same days are equal, however they were said.
    """

    start_day: int = 0
    days: int = 0
    anchor: str | None = field(default=None, compare=False)

    @property
    def is_now(self) -> bool:
        return self.days == 0


NOW = Timeframe()


@dataclass(frozen=True)
class Understanding:
    intent: Intent
    place: str | None = None
    timeframe: Timeframe | None = None
    units: Units | None = None
    name: str | None = None
    follow_up: bool = False


_FLAGS = re.IGNORECASE
_WEATHER_WORDS = re.compile(
    r"\b(weather|forecast|temperature|temp|rain\w*|snow\w*|sun|sunny|cloud\w*|hot|cold|warm|"
    r"chilly|wind\w*|humid\w*|umbrella|degrees|storm\w*|thunder\w*|fog\w*|drizzle|"
    r"fahrenheit|celsius)\b",
    _FLAGS,
)
_FOLLOW_UP = re.compile(
    r"^\s*(and|what about|how about|what of|same for|also)\b|\b(instead|then)\b", _FLAGS
)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_NUMBER = r"(\d+|one|two|three|four|five|six|seven)"
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Words that end a place name: time frames, units and filler ("Paris tomorrow please").
_PLACE_END = re.compile(
    r"\b(today|tonight|tomorrow|now|right now|currently|this|next|the next|coming|over|"
    r"during|on|in (?:the )?(?:fahrenheit|celsius|metric|imperial)|fahrenheit|celsius|"
    r"metric|imperial|please|then|instead|like|going|be|will|weekend|week|days?|"
    + "|".join(_WEEKDAYS)
    + r")\b",
    _FLAGS,
)
_LEADING_FILLER = re.compile(
    r"^(?:(?:what'?s|whats|what|is|the|how'?s|hows|how|tell|me|show|give|get|current|"
    r"today'?s|tomorrow'?s|and|so|ok|okay|please|a|check|it)\s+)+",
    _FLAGS,
)
_PLACE_PATTERNS = [
    re.compile(r"\b(?:what|how)\s+about\s+(?:the\s+weather\s+)?(?:in\s+|for\s+)?(?P<p>.+)", _FLAGS),
    re.compile(r"\b(?:in|for|at|near)\s+(?P<p>[^?!;]+)", _FLAGS),
    re.compile(r"^(?P<p>[^?!;]+?)\s+(?:weather|forecast|temperature)\b", _FLAGS),
]
_BARE_PLACE = re.compile(r"^\s*(?:and\s+)?(?:in\s+)?(?P<p>[^\d?!;]{2,40}?)\s*[?.!]*\s*$", _FLAGS)

_NOT_NAMES = frozenset(
    """fine good ok okay great well here back going looking wondering curious interested in at
    from not so very just a an the planning trying asking travelling traveling tired cold hot
    sorry glad happy new visiting bored hungry heading flying leaving done sure also still
    currently really thinking hoping excited worried sick busy home alone ready""".split()
)
_NAME_PATTERNS = [
    re.compile(r"\bmy name is\s+(?P<n>[^\W\d_][\w'-]*)", _FLAGS),
    re.compile(r"\bcall me\s+(?P<n>[^\W\d_][\w'-]*)", _FLAGS),
    re.compile(r"^(?:(?:hi|hello|hey)\W+)?(?:i'?m|i am|this is)\s+(?P<n>[^\W\d_][\w'-]*)", _FLAGS),
]
_ASK_NAME = re.compile(
    r"\b(what'?s|what is|do you (?:know|remember)|tell me|say)\s+my name\b|\bwho am i\b", _FLAGS
)
_GREETING = re.compile(
    r"^\W*(hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening)|yo)\b", _FLAGS
)
_THANKS = re.compile(r"\b(thanks|thank you|thx|cheers|ty)\b", _FLAGS)
_HELP = re.compile(r"\b(help|what can you do|who are you|what are you|how do you work)\b", _FLAGS)
_GOODBYE = re.compile(r"\b(bye|goodbye|see you|farewell|good night)\b", _FLAGS)
_SMALL_TALK: list[tuple[Intent, re.Pattern[str]]] = [
    ("greeting", _GREETING),
    ("thanks", _THANKS),
    ("help", _HELP),
    ("goodbye", _GOODBYE),
]


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBER_WORDS[text.lower()]


def parse_units(text: str) -> Units | None:
    if re.search(r"\b(fahrenheit|imperial|°f|freedom units)\b|°f", text, _FLAGS):
        return "imperial"
    if re.search(r"\b(celsius|centigrade|metric)\b|°c", text, _FLAGS):
        return "metric"
    return None


def parse_timeframe(text: str, today: date) -> Timeframe | None:
    """The time frame a message asks about, or None when it names none."""
    lowered = text.lower()
    if "day after tomorrow" in lowered:
        return Timeframe(2, 1)
    if re.search(r"\btomorrow\b", lowered):
        return Timeframe(1, 1)
    if re.search(r"\bweekend\b", lowered):
        weekday = today.weekday()  # Monday = 0
        if weekday == 6:
            return Timeframe(0, 1, anchor="weekend")
        return Timeframe(max(0, 5 - weekday), 2, anchor="weekend")
    match = re.search(rf"\b(?:next|coming|following)\s+{_NUMBER}\s+days\b", lowered) or re.search(
        rf"\b{_NUMBER}[- ]days?\b", lowered
    )
    if match:
        return Timeframe(0, max(1, min(_number(match.group(1)), MAX_FORECAST_DAYS)))
    if re.search(r"\b(this|next|the|a|coming)\s+week\b|\bweek ahead\b|\bweekly\b", lowered):
        return Timeframe(0, MAX_FORECAST_DAYS)
    for index, weekday_name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{weekday_name}\b", lowered):
            return Timeframe((index - today.weekday()) % 7, 1, anchor=weekday_name)
    if re.search(r"\btonight\b|\blater today\b", lowered):
        return Timeframe(0, 1)
    if re.search(r"\bforecast\b", lowered):
        return Timeframe(0, 3)
    if re.search(r"\b(now|right now|currently|today|at the moment)\b", lowered):
        return NOW
    return None


def _clean_place(candidate: str) -> str | None:
    place = _PLACE_END.split(candidate, maxsplit=1)[0]
    place = _LEADING_FILLER.sub("", place.strip())
    place = re.sub(r"^(?:the\s+)?(?:city|town)\s+of\s+", "", place, flags=_FLAGS)
    place = place.strip(" ,.;:!?'\"-")
    if not place or len(place) > 80 or _WEATHER_WORDS.fullmatch(place):
        return None
    if place.lower() in {"it", "there", "here", "me", "you", "general", "the area", "my area"}:
        return None
    return place


def parse_place(text: str, *, allow_bare: bool = False) -> str | None:
    """A place name mentioned in the message; with `allow_bare`, the whole short message."""
    for pattern in _PLACE_PATTERNS:
        for match in pattern.finditer(text):
            place = _clean_place(match.group("p"))
            if place:
                return place
    if allow_bare:
        bare = _BARE_PLACE.match(text)
        place = _clean_place(bare.group("p")) if bare else None
        # A bare "Paris?" or "New York?" reads as a place; "tell me a joke" does not.
        if place and len(place.split()) <= 4 and all(_looks_like_name(w) for w in place.split()):
            return place
    return None


def _looks_like_name(word: str) -> bool:
    return word[:1].isupper() or word.lower() in {"of", "de", "la", "le", "upon", "on", "am"}


def parse_name(text: str) -> str | None:
    """A name the user introduces themselves with ("I'm Alice", "my name is Bob")."""
    for index, pattern in enumerate(_NAME_PATTERNS):
        match = pattern.search(text.strip())
        if not match:
            continue
        name = match.group("n")
        if name.lower() in _NOT_NAMES:
            continue
        # "I'm alice" counts only as a short message; "I'm Alice" always does.
        if index == 2 and not name[0].isupper() and len(text.split()) > 3:
            continue
        return name[0].upper() + name[1:]
    return None


def understand(text: str, today: date, *, has_weather_context: bool = False) -> Understanding:
    """Read one user message. `has_weather_context`: earlier turns asked about weather."""
    if _ASK_NAME.search(text):
        return Understanding("ask_name")
    units = parse_units(text)
    timeframe = parse_timeframe(text, today)
    follow_up = bool(_FOLLOW_UP.search(text))
    name = parse_name(text)
    about_weather = bool(_WEATHER_WORDS.search(text))
    # "and tomorrow?", "in Fahrenheit", "what about Paris?" continue an earlier weather question.
    continues = has_weather_context and (follow_up or timeframe is not None or units is not None)
    if about_weather or continues:
        return Understanding(
            "weather",
            # "Tokyo this weekend": a bare place next to a time frame or units counts too.
            place=parse_place(text, allow_bare=timeframe is not None or units is not None),
            timeframe=timeframe,
            units=units,
            name=name,
            follow_up=continues,
        )
    if name:
        return Understanding("introduce", name=name)
    for intent, pattern in _SMALL_TALK:
        if pattern.search(text):
            return Understanding(intent)
    if has_weather_context:
        place = parse_place(text, allow_bare=True)  # "Paris?" after a weather answer
        if place:
            return Understanding("weather", place=place, follow_up=True)
    if timeframe is not None and timeframe != NOW:  # "next 3 days in Oslo", "Oslo tomorrow"
        place = parse_place(text, allow_bare=True)
        return Understanding("weather", place=place, timeframe=timeframe, units=units)
    return Understanding("other")
