"""The running service: storage, session manager and cleanup, wired to the agent graph.

Created by the app's lifespan (`start_service`), so nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent import build_graph
from agent.facts import extract_facts
from agent.models import load_chat_model
from agent.weather import WeatherSource, make_weather_source
from agent.weather.gazetteer import gazetteer
from server.config import Settings
from server.limits import RateLimiter, check_message
from server.metrics import Metrics
from session_policy.cleanup import Cleanup
from session_policy.events import AllEvents, LogEvents, SessionEvents
from session_policy.manager import Graph, SessionManager
from session_policy.models import SessionLimits
from session_policy.policy import SessionPolicy
from session_policy.storage import Backing, Storage

log = logging.getLogger(__name__)

VERSION = "0.1.0"


@dataclass
class Service:
    settings: Settings
    storage: Storage
    manager: SessionManager
    cleanup: Cleanup
    model_name: str
    weather_name: str
    metrics: Metrics
    rate_limiter: RateLimiter
    started_at: float = field(default_factory=time.time)
    background: list[asyncio.Task[Any]] = field(default_factory=list)

    def admit(self, user_id: str, message: str) -> None:
        """Refuse a message that is too long or over the user's rate limit."""
        check_message(message, self.settings.max_message_chars)
        self.rate_limiter.check(user_id)

    async def stop(self) -> None:
        await self.cleanup.stop()
        ended = await self.manager.shutdown()
        if ended:
            log.info("shutdown: ended %d sessions", len(ended))
        await self.storage.close()


def make_manager(
    settings: Settings,
    storage: Storage,
    *,
    model: BaseChatModel | None = None,
    weather: WeatherSource | None = None,
    events: SessionEvents | None = None,
) -> SessionManager:
    model = model or load_chat_model(settings)
    weather = weather or make_weather_source(settings)
    policy = SessionPolicy(
        SessionLimits.from_settings(settings),
        extract_facts=extract_facts,
        facts_ttl_s=settings.user_memory_ttl,
    )

    def graph_for(backing: Backing) -> Graph:
        return build_graph(
            backing.checkpointer, store=backing.facts, model=model, weather=weather, policy=policy
        )

    return SessionManager(
        storage,
        graph_for,
        end_sessions_on_shutdown=settings.end_sessions_on_shutdown,
        events=events,
        queue_s=settings.turn_queue_seconds,
    )


async def start_service(settings: Settings, **overrides: Any) -> Service:
    storage = Storage(settings, settings.redis_url)
    await storage.start()
    # Build the offline gazetteer in the background now, not during the first user's turn.
    warm_up = asyncio.create_task(asyncio.to_thread(gazetteer))
    metrics = Metrics()
    events = AllEvents([LogEvents(), metrics])
    manager = make_manager(settings, storage, events=events, **overrides)
    cleanup = Cleanup(storage, settings.cleanup_interval_seconds, events=events)
    cleanup.start()
    weather = overrides.get("weather")
    return Service(
        settings=settings,
        storage=storage,
        manager=manager,
        cleanup=cleanup,
        model_name=settings.resolved_model,
        weather_name=weather.name if weather is not None else settings.weather_provider,
        metrics=metrics,
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        background=[warm_up],
    )
