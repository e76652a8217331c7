"""The `weather-agent` command line: serve, chat, demo, monitor, cleanup, token."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import aconnect_sse
from rich.console import Console
from rich.live import Live
from rich.table import Table

from server import serving
from server.auth import mint
from server.config import ConfigError, Settings, load_settings
from server.logs import setup_logging
from session_policy.embedded_cluster import EmbeddedCluster
from session_policy.ids import InvalidIdError
from session_policy.manager import TurnResult
from session_policy.redis_server import EmbeddedRedis, EmbeddedRedisError

cli = typer.Typer(
    help="Weather agent with session-bounded memory.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


def _embedded_redis() -> EmbeddedRedis:
    try:
        return EmbeddedRedis().start()
    except EmbeddedRedisError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


def _embedded_cluster(primaries: int) -> EmbeddedCluster:
    try:
        return EmbeddedCluster(primaries).start()
    except EmbeddedRedisError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@cli.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(envvar="WORKERS", help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart when code changes (development).")] = False,
    cluster: Annotated[
        int,
        typer.Option(
            min=0,
            max=16,
            help="Start a local Redis Cluster of this many primaries (a replica each) from "
            "the embedded redis-server and serve on it (development; not with REDIS_URL).",
        ),
    ] = 0,
) -> None:
    """Serve the agent over HTTP. Without REDIS_URL, an embedded Redis 8 is started (with
    --cluster N, an embedded Redis Cluster)."""
    settings = _settings()
    setup_logging(settings.log_format, settings.log_level)
    if settings.auth_mode == "none" and host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]Warning: AUTH_MODE=none on {host}: anyone who can reach it can read "
            "and end every user's sessions. Set AUTH_MODE=token for a shared network.[/yellow]"
        )
    embedded: EmbeddedRedis | EmbeddedCluster | None = None
    if cluster and settings.redis_url:
        console.print("[red]--cluster starts its own Redis Cluster: unset REDIS_URL[/red]")
        raise typer.Exit(2)
    if cluster:
        embedded = _embedded_cluster(cluster)
        os.environ["REDIS_URL"] = embedded.url  # read by every worker's settings
        console.print(
            f"Embedded Redis Cluster ({cluster} primaries, a replica each) at {embedded.url}"
        )
    elif not settings.redis_url:
        embedded = _embedded_redis()
        os.environ["REDIS_URL"] = embedded.url  # read by every worker's settings
        console.print(f"Embedded Redis 8 at {embedded.url} (set REDIS_URL to use your own)")
    console.print(f"Playground: http://{host}:{port}/agent/playground/   API docs: /docs")
    try:
        serving.run(serving.make_config(host=host, port=port, workers=workers, reload=reload))
    finally:
        if embedded is not None:
            embedded.close()


@cli.command()
def token(
    user_id: Annotated[str | None, typer.Argument(help="The user the token acts for.")] = None,
    admin: Annotated[bool, typer.Option(help="An admin token (all users, /system).")] = False,
    days: Annotated[float, typer.Option(help="Days until it expires.")] = 30,
) -> None:
    """Mint an access token for AUTH_MODE=token (signed with AUTH_SECRET)."""
    settings = _settings()
    if settings.auth_secret is None:
        console.print("[red]AUTH_SECRET is not set[/red]")
        raise typer.Exit(2)
    if not admin and user_id is None:
        console.print("[red]give a USER_ID, or --admin[/red]")
        raise typer.Exit(2)
    try:
        minted = mint(settings.auth_secret.get_secret_value(), user_id, admin=admin, days=days)
    except InvalidIdError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    typer.echo(minted)


async def _remote_turns(url: str, user: str, message: str) -> AsyncIterator[str | dict[str, Any]]:
    """Tokens, then the final JSON, from a running server's `/chat` stream."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        aconnect_sse(
            client, "POST", "/chat", json={"message": message, "userId": user, "stream": True}
        ) as events,
    ):
        events.response.raise_for_status()
        async for event in events.aiter_sse():
            data = json.loads(event.data)
            if event.event == "token":
                yield data["text"]
            elif event.event == "end":
                yield data
            elif event.event == "error":
                raise RuntimeError(data["error"]["message"])


def _status_line(result: dict[str, Any]) -> str:
    line = (
        f"[dim]{result['sessionId']} · conversation {result['conversationCount']} · "
        f"{result['sessionStatus']}"
    )
    if result.get("endReason"):
        line += f" ({result['endReason']})"
    return line + "[/dim]"


@cli.command()
def chat(
    user: Annotated[str, typer.Option(help="Your user id.")] = "cli-user",
    url: Annotated[
        str | None, typer.Option(help="A running server, e.g. http://127.0.0.1:8000.")
    ] = None,
) -> None:
    """Chat in the terminal, with streaming. In-process unless --url names a server."""
    asyncio.run(_chat(user, url))


async def _chat(user: str, url: str | None) -> None:
    from server.service import start_service

    service = None
    embedded = None
    if url is None:
        settings = _settings()
        if not settings.redis_url:
            embedded = _embedded_redis()
            settings = _settings(redis_url=embedded.url)
        service = await start_service(settings)
    console.print("Ask about the weather anywhere. Ctrl-D or 'exit' to leave.")
    try:
        while True:
            try:
                message = await asyncio.to_thread(console.input, "[bold]you> [/bold]")
            except EOFError:
                break
            if message.strip() in ("exit", "quit"):
                break
            if not message.strip():
                continue
            console.print("[bold]agent>[/bold] ", end="")
            events: AsyncIterator[Any] = (
                service.manager.turn(user, message)
                if service is not None
                else _remote_turns(url or "", user, message)
            )
            async for event in events:
                if isinstance(event, str):
                    console.print(event, end="", soft_wrap=True, highlight=False)
                else:
                    final = event.to_api() if isinstance(event, TurnResult) else event
                    console.print()
                    console.print(_status_line(final))
    finally:
        if service is not None:
            await service.stop()
        if embedded is not None:
            embedded.close()


DEMO_SCRIPT = [
    ("demo-user", "Hi, I'm Dana"),
    ("demo-user", "What's the weather in London?"),
    ("demo-user", "and tomorrow?"),
    ("demo-user", "what's my name?"),
    ("demo-user", "Weather in Tokyo this weekend?"),
]


@cli.command()
def demo() -> None:
    """The session demo: a session starts, its conversation limit ends it, a new one
    starts (still knowing your name), a manual end, and the statistics."""
    asyncio.run(_demo())


async def _demo() -> None:
    from server.service import start_service

    embedded = _embedded_redis()
    settings = _settings(
        redis_url=embedded.url,
        max_conversations_per_session=3,
        model="offline",
        weather_provider="simulated",
    )
    service = await start_service(settings)
    manager = service.manager
    try:
        console.rule("Session demo (limit: 3 conversations per session)")
        for user, message in DEMO_SCRIPT:
            result = await manager.chat(user, message)
            console.print(f"[bold]{user}>[/bold] {message}")
            console.print(f"[green]agent>[/green] {result.response}")
            console.print(_status_line(result.to_api()))
            if result.session_status == "ended":
                console.print(
                    f"[yellow]Session {result.session_id} ended ({result.end_reason}): its "
                    "data is gone from Redis; the next message starts a new session.[/yellow]"
                )
        [active] = await manager.active_sessions("demo-user")
        console.print(
            f"\nActive session: {active.session_id} ({active.conversation_count} conversations)"
        )
        ended = await manager.end_user_sessions("demo-user")
        console.print(f"[yellow]Ended manually: {', '.join(ended)}[/yellow]")
        table = Table(title="Ended sessions of demo-user")
        for column in ("session", "conversations", "duration (s)", "reason"):
            table.add_column(column)
        for record in await manager.ended_sessions("demo-user", 10):
            table.add_row(
                record.sessionId,
                str(record.conversationCount),
                f"{record.duration:.2f}",
                record.endReason,
            )
        console.print(table)
        from server.monitoring import status_report

        stats = (await status_report(service))["sessions"]
        console.print_json(data=stats)
    finally:
        await service.stop()
        embedded.close()


def _dashboard(url: str) -> Table:
    with httpx.Client(base_url=url, timeout=5) as client:
        status = client.get("/system/status").json()
        memory = client.get("/system/memory").json()
    table = Table(title=f"weather-agent at {url} · {time.strftime('%H:%M:%S')}")
    table.add_column("what")
    table.add_column("value", justify="right")
    redis = memory.get("redis", {})
    sessions = status.get("sessions", {})
    rows = [
        ("status", status.get("status")),
        ("storage", status.get("storageMode")),
        ("Redis ping (ms)", status.get("redis", {}).get("pingMs")),
        ("Redis used memory", redis.get("usedMemoryHuman")),
        ("Redis peak", redis.get("usedMemoryPeakHuman")),
        ("keys", redis.get("keys", {}).get("total")),
        ("active sessions", sessions.get("activeSessions")),
        ("conversations held", redis.get("conversationsHeld")),
        ("bytes per session", redis.get("averageBytesPerSession")),
        ("cleanup runs", sessions.get("cleanup", {}).get("runs")),
        ("last cleanup", sessions.get("cleanup", {}).get("lastRun")),
        ("process RSS", memory.get("process", {}).get("rssHuman")),
    ]
    for reason, count in sessions.get("endedByReason", {}).items():
        rows.append((f"ended: {reason}", count))
    for name, value in rows:
        table.add_row(name, "-" if value is None else str(value))
    return table


@cli.command()
def monitor(
    url: Annotated[str, typer.Option(help="The server to watch.")] = "http://127.0.0.1:8000",
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 3.0,
    once: Annotated[bool, typer.Option(help="Print one snapshot and exit.")] = False,
) -> None:
    """Live dashboard of /system/status and /system/memory."""
    try:
        if once:
            console.print(_dashboard(url))
            return
        with Live(_dashboard(url), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(interval)
                live.update(_dashboard(url))
    except httpx.HTTPError as error:
        console.print(f"[red]cannot reach {url}: {error}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def _print_sweep(report: dict[str, Any], where: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report))
        return
    console.print(
        f"Cleanup of {where}: ended {report['endedCount']} expired sessions "
        f"in {report['durationMs']:.1f} ms"
    )
    for record in report["ended"]:
        console.print(
            f"  {record['sessionId']}  {record['endReason']}  "
            f"{record['conversationCount']} conversations"
        )


@cli.command()
def cleanup(
    url: Annotated[
        str | None,
        typer.Option(
            help="A running server: POST its /system/cleanup (e.g. http://127.0.0.1:8000)."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="WEATHER_AGENT_TOKEN", help="Admin token, for AUTH_MODE=token."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """End expired sessions now: one cleanup sweep, as the timer runs every CLEANUP_INTERVAL.

    With --url, the server does it. Without, the sweep runs here against REDIS_URL (no
    server needed); with no REDIS_URL either, the sessions live in a local server's
    embedded Redis, so it asks http://127.0.0.1:$PORT."""
    settings = _settings()
    if url is None and not settings.redis_url:
        url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    if url is not None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = httpx.post(f"{url.rstrip('/')}/system/cleanup", headers=headers, timeout=60)
        except httpx.HTTPError as error:
            console.print(f"[red]cannot reach {url}: {error}[/red]")
            raise typer.Exit(1) from None
        if response.status_code != 200:
            console.print(f"[red]{url} answered {response.status_code}: {response.text}[/red]")
            raise typer.Exit(1)
        _print_sweep(response.json(), url, as_json)
        return
    report = asyncio.run(_sweep_here(settings))
    _print_sweep(report, "REDIS_URL", as_json)


async def _sweep_here(settings: Settings) -> dict[str, Any]:
    from server.housekeeping import sweep_report
    from session_policy.cleanup import Cleanup
    from session_policy.storage import Storage

    storage = Storage(settings, settings.redis_url)
    await storage.start()
    try:
        if not storage.writable:
            console.print(f"[red]Redis is unreachable: {storage.last_error}[/red]")
            raise typer.Exit(1)
        return await sweep_report(Cleanup(storage, settings.cleanup_interval_seconds))
    finally:
        await storage.close()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
