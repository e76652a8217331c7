"""Double texting against two server processes on one Redis: 20 messages of one user while
their turns run, alternating between the processes.

`DOUBLE_TEXTING=reject`: each is answered or refused (409), and the session holds exactly the
answered ones. `enqueue`: all are answered, each once, the conversation counts exactly 1..20,
and messages that arrive in a known order (each sent once the one before holds its place in
line) are answered in that order. A message that waits longer than `DOUBLE_TEXTING_TIMEOUT`
gets the 409, streams wait as plain answers do, and a waiter killed with its process does not
block the queue.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
import redis

from session_policy import keys
from session_policy.redis_server import EmbeddedRedis
from tests.reliability.helpers import (
    JSON,
    client,
    get_json,
    kill_hard,
    running_servers,
    wait_until,
)
from tests.server_process import ServerProcess

pytestmark = pytest.mark.integration

MESSAGES = 20
ENV = {"MAX_CONVERSATIONS_PER_SESSION": "50", "RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture(scope="module")
def rejecting(server_redis: EmbeddedRedis) -> Iterator[list[ServerProcess]]:
    with running_servers(server_redis.url, 2, DOUBLE_TEXTING="reject", **ENV) as servers:
        yield servers


@pytest.fixture(scope="module")
def queueing(server_redis: EmbeddedRedis) -> Iterator[list[ServerProcess]]:
    env = {**ENV, "DOUBLE_TEXTING": "enqueue", "DOUBLE_TEXTING_TIMEOUT": "120"}
    with running_servers(server_redis.url, 2, **env) as servers:
        yield servers


@pytest.fixture(scope="module")
def short_wait(server_redis: EmbeddedRedis) -> Iterator[ServerProcess]:
    """Queues (the default) for one second."""
    with running_servers(server_redis.url, 1, DOUBLE_TEXTING_TIMEOUT="1", **ENV) as servers:
        yield servers[0]


def new_user() -> str:
    return f"dt-{uuid.uuid4().hex[:8]}"


async def send_all(
    servers: list[ServerProcess],
    who: str,
    arrived: Callable[[int], Awaitable[None]] | None = None,
) -> list[JSON]:
    """Message i goes to process i % 2: all at once, or, with `arrived`, each once that has
    returned for the one before. The answers (status and body) in send order."""
    clients = [client(server.url) for server in servers]

    async def send(i: int) -> JSON:
        response = await clients[i % len(clients)].post(
            "/chat", json={"message": f"hi {i}", "userId": who}
        )
        return {"status": response.status_code, **response.json()}

    try:
        for http in clients:  # connected before the clock starts
            await get_json(http, "/health")
        sending = []
        for i in range(MESSAGES):
            sending.append(asyncio.create_task(send(i)))
            if arrived is not None:
                await arrived(i)
        return list(await asyncio.gather(*sending))
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
    answers = await send_all(rejecting, who)  # all at once
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
    """While a (long) turn runs, 20 messages arrive at the two processes in turn, each sent
    once the one before holds its place in line (so their arrival order is exactly the
    order sent); once that turn is done they are answered one by one, in that order."""
    who = new_user()
    held = hold_turn(server_redis.url, who)

    async def arrived(i: int) -> None:
        async def queued() -> bool:  # + 1: the ticket counter
            return len(held.hkeys(keys.user_queue(who))) == i + 1 + 1

        await wait_until(queued, 60, f"message {i} waiting in the queue", interval_s=0.005)
        if i == MESSAGES - 1:  # all 20 wait: the long turn is over
            held.delete(keys.user_lock(who))

    answers = await send_all(queueing, who, arrived)
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
    answers = await send_all(queueing, who)
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


async def test_a_waiter_killed_with_its_process_does_not_block_the_queue(
    server_redis: EmbeddedRedis,
) -> None:
    """`kill -9` of a process whose message is first in line: its place expires (within
    manager.QUEUE_PLACE_MS) and the message behind it, on the other process, is answered."""
    who = new_user()
    held = hold_turn(server_redis.url, who)
    queue = keys.user_queue(who)
    with running_servers(server_redis.url, 2, **ENV) as (doomed, survivor):
        async with client(doomed.url) as first, client(survivor.url) as second:
            doomed_turn = asyncio.create_task(
                first.post("/chat", json={"message": "lost", "userId": who})
            )

            async def waiting(count: int) -> bool:
                return len(held.hkeys(queue)) == count + 1  # + the ticket counter

            await wait_until(lambda: waiting(1), 30, "the first message queued")
            behind = asyncio.create_task(
                second.post("/chat", json={"message": "hi", "userId": who})
            )
            await wait_until(lambda: waiting(2), 30, "the second message queued behind it")
            kill_hard(doomed)
            with pytest.raises(httpx.HTTPError):
                await doomed_turn
            held.delete(keys.user_lock(who))
            answered = await behind
    held.close()
    assert answered.status_code == 200, answered.text
    assert answered.json()["conversationCount"] == 1
