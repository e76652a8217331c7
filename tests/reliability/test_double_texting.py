"""Double texting against two server processes on one Redis: 20 messages of one user, sent
while each other's turns run, alternating between the processes.

`DOUBLE_TEXTING=reject`: each is answered or refused (409), and the session holds exactly the
answered ones. `enqueue`: all are answered, one after the other in the order they were sent,
and the conversation counts are exactly 1..20. A message that waits longer than
`DOUBLE_TEXTING_TIMEOUT` gets the 409, and streams wait as plain answers do.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import (
    JSON,
    chat,
    client,
    get_json,
    running_servers,
    wait_until,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

MESSAGES = 20
STAGGER_S = 0.02  # messages sent this far apart arrive in the order sent
ENV = {"MAX_CONVERSATIONS_PER_SESSION": "50", "RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture(scope="module")
def rejecting(server_redis: EmbeddedRedis) -> Iterator[list[ServerProcess]]:
    with running_servers(server_redis.url, 2, DOUBLE_TEXTING="reject", **ENV) as servers:
        yield servers


@pytest.fixture(scope="module")
def queueing(server_redis: EmbeddedRedis) -> Iterator[list[ServerProcess]]:
    env = {**ENV, "DOUBLE_TEXTING": "enqueue", "DOUBLE_TEXTING_TIMEOUT": "120"}
    with running_servers(server_redis.url, 2, **env) as servers:
        asyncio.run(warm_up(servers))
        yield servers


async def warm_up(servers: list[ServerProcess]) -> None:
    """A few turns on each process: a fresh one is slow for its first moments (the offline
    gazetteer is built in the background), which would delay one process's messages behind
    the other's by more than the stagger, and change their arrival order."""
    for server in servers:
        async with client(server.url) as http:
            for _ in range(3):
                await chat(http, "warm-up", "Weather in Paris?")


@pytest.fixture(scope="module")
def short_wait(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    """Queues (the default) for one second."""
    with running_servers(server_redis.url, 1, DOUBLE_TEXTING_TIMEOUT="1", **ENV) as servers:
        yield servers[0]


def new_user() -> str:
    return f"dt-{uuid.uuid4().hex[:8]}"


async def send_all(servers: list[ServerProcess], who: str, stagger_s: float) -> list[JSON]:
    """Message i goes to process i % 2, `stagger_s` after message i - 1; the answers (status
    and body) in send order."""
    clients = [client(server.url) for server in servers]

    async def send(i: int) -> JSON:
        await asyncio.sleep(i * stagger_s)
        response = await clients[i % len(clients)].post(
            "/chat", json={"message": f"hi {i}", "userId": who}
        )
        return {"status": response.status_code, **response.json()}

    try:
        # The test process's first request stalls its event loop for a moment (lazy set-up
        # in the HTTP client), which would bunch the staggered sends together.
        for http in clients:
            await get_json(http, "/health")
        return list(await asyncio.gather(*(send(i) for i in range(MESSAGES))))
    finally:
        for http in clients:
            await http.aclose()


async def stored(server: ServerProcess, who: str) -> tuple[list[JSON], list[str]]:
    """The user's active sessions and what the user said in the current one, in order."""
    async with client(server.url) as http:
        sessions = (await get_json(http, f"/sessions/{who}"))["sessions"]
        history = (await get_json(http, f"/sessions/{who}/history"))["messages"]
    return sessions, [m["content"] for m in history if m["role"] == "user"]


async def test_reject_answers_or_refuses_each_message(rejecting: list[ServerProcess]) -> None:
    who = new_user()
    answers = await send_all(rejecting, who, stagger_s=0)  # all at once
    assert {a["status"] for a in answers} == {200, 409}, answers
    assert all(a["error"]["code"] == "busy" for a in answers if a["status"] == 409)
    assert_served_in_one_session(answers)
    sessions, said = await stored(rejecting[1], who)
    assert [s["conversationCount"] for s in sessions] == [len(served_order(answers))]
    # Exactly the answered messages, once each, in the order they were answered.
    assert said == served_order(answers)


async def test_enqueue_answers_every_message_in_the_order_sent(
    queueing: list[ServerProcess], server_redis: EmbeddedRedis
) -> None:
    """While a (long) turn runs, 20 messages arrive 20 ms apart at the two processes; once
    it is done they are answered one by one, in the order they were sent."""
    who = new_user()
    held = hold_turn(server_redis.url, who)
    sending = asyncio.create_task(send_all(queueing, who, STAGGER_S))

    async def all_queued() -> bool:
        return len(held.hkeys(keys.user_queue(who))) == MESSAGES + 1  # + the ticket counter

    await wait_until(all_queued, 60, f"{MESSAGES} messages waiting in the queue")
    held.delete(keys.user_lock(who))
    answers = await sending
    held.close()
    assert [a["status"] for a in answers] == [200] * MESSAGES, answers
    assert {a["storage"] for a in answers} == {"redis"}
    assert len({a["sessionId"] for a in answers}) == 1
    assert [a["conversationCount"] for a in answers] == list(range(1, MESSAGES + 1))
    sessions, said = await stored(queueing[0], who)
    assert [s["conversationCount"] for s in sessions] == [MESSAGES]
    assert said == [f"hi {i}" for i in range(MESSAGES)]


async def test_enqueue_answers_every_message_sent_at_once(queueing: list[ServerProcess]) -> None:
    """20 messages at once, racing real turns on both processes: every one is answered,
    each once, the counts exactly 1..20, the history in the order they were answered."""
    who = new_user()
    answers = await send_all(queueing, who, stagger_s=0)
    assert [a["status"] for a in answers] == [200] * MESSAGES, answers
    assert_served_in_one_session(answers)
    assert sorted(a["conversationCount"] for a in answers) == list(range(1, MESSAGES + 1))
    sessions, said = await stored(queueing[1], who)
    assert [s["conversationCount"] for s in sessions] == [MESSAGES]
    assert said == served_order(answers)


def assert_served_in_one_session(answers: list[JSON]) -> None:
    """The answered messages got the counts 1..n in one session (so none was lost or doubled)."""
    answered = [a for a in answers if a["status"] == 200]
    assert len({a["sessionId"] for a in answered}) == 1
    counts = sorted(a["conversationCount"] for a in answered)
    assert counts == list(range(1, len(answered) + 1))


def served_order(answers: list[JSON]) -> list[str]:
    """The answered messages, in the order they were answered (by their counts)."""
    answered = [(a["conversationCount"], i) for i, a in enumerate(answers) if a["status"] == 200]
    return [f"hi {i}" for _, i in sorted(answered)]


def hold_turn(redis_url: str, who: str) -> redis.Redis:
    """Holds `who`'s turn lock as a long turn would (released by deleting it)."""
    client = redis.Redis.from_url(redis_url)
    assert client.set(keys.user_lock(who), "a-long-turn", px=60_000)
    return client


async def test_a_message_waiting_past_the_timeout_gets_409(
    short_wait: ServerProcess, server_redis: EmbeddedRedis
) -> None:
    who = new_user()
    held = hold_turn(server_redis.url, who)
    async with client(short_wait.url) as http:
        started = time.monotonic()
        refused = await http.post("/chat", json={"message": "hi", "userId": who})
        waited = time.monotonic() - started
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "busy"
        assert waited >= 1.0  # it waited its timeout first
        # It gave up its place: nothing of it is left in the queue.
        assert held.hkeys(keys.user_queue(who)) in ([], [keys.QUEUE_NEXT.encode()])
        streamed = await http.post("/chat", json={"message": "hi", "userId": who, "stream": True})
        assert streamed.status_code == 409  # a plain 409, not a stream
        held.delete(keys.user_lock(who))
        answered = await http.post("/chat", json={"message": "hi", "userId": who})
        assert answered.status_code == 200
        assert answered.json()["conversationCount"] == 1
    held.close()


async def test_streams_wait_for_the_running_turn(
    short_wait: ServerProcess, server_redis: EmbeddedRedis
) -> None:
    who = new_user()
    held = hold_turn(server_redis.url, who)

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        held.delete(keys.user_lock(who))

    async with client(short_wait.url) as http:
        release = asyncio.create_task(release_soon())
        sse = await http.post(
            "/chat", json={"message": "hi", "userId": who}, headers={"Accept": "text/event-stream"}
        )
        await release
        assert sse.status_code == 200
        assert "event: error" not in sse.text
        end = sse.text.split("event: end")[1].split("data: ", 1)[1].splitlines()[0]
        assert json.loads(end)["conversationCount"] == 1

        hold_turn(server_redis.url, who).close()
        release = asyncio.create_task(release_soon())
        langserve = await http.post(
            "/agent/stream",
            json={"input": {"messages": [{"type": "human", "content": "hi again"}]}},
            headers={"X-User-Id": who},
        )
        await release
        assert langserve.status_code == 200
        assert "event: error" not in langserve.text
        assert "event: end" in langserve.text
        sessions, said = await stored(short_wait, who)
    assert [s["conversationCount"] for s in sessions] == [2]
    assert said == ["hi", "hi again"]
    held.close()
