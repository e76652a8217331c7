"""The LangServe chat playground in a real browser, against a real `weather-agent serve`."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Error, Locator, Page, expect

from tests.server_process import ServerProcess

ROOT = Path(__file__).parents[2]
SCREENSHOT = ROOT / "test-artifacts" / "playground.png"

# Waits (Playwright polls until the condition holds), not limits on how fast the agent answers.
PAGE_TIMEOUT = 60_000
ANSWER_TIMEOUT = 90_000

# One message of the conversation: a role selector (HUMAN/AI/SYSTEM) above the text. The text
# sits in a textarea (kept transparent) and in an aria-hidden copy that is what one sees.
MESSAGE = "div.mb-8.group"
CHAT_BOX = "Send a message..."
REFUSED = "The chat playground is only supported for chains"


def message(page: Page, text: str) -> Locator:
    return page.locator(MESSAGE).filter(has_text=text)


def ask(page: Page, question: str, answer_start: str) -> None:
    """Type a question as a user would, and wait until its answer has finished streaming."""
    chat_box = page.get_by_placeholder(CHAT_BOX)
    answer = message(page, answer_start)
    # On a busy machine the playground may still be wiring itself up when the question is
    # sent: the Enter is lost, or the chat is reset once its schemas arrive. Then the
    # question is typed again, as a person would; a real answer is still required.
    for _ in range(3):
        if not message(page, question).count():
            chat_box.fill(question)
            chat_box.press("Enter")
        try:
            expect(answer).to_be_visible(timeout=30_000)
            break
        except AssertionError:
            continue
    expect(message(page, question).locator("select")).to_have_value("human")
    expect(answer).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(answer.locator("select")).to_have_value("ai")
    expect(answer.locator("textarea")).to_have_value(re.compile("^" + re.escape(answer_start)))
    # The send button spins while the answer streams, and the playground ignores a message sent
    # meanwhile: the next question waits for the stream to be over.
    expect(page.locator("button .animate-spin")).to_have_count(0, timeout=ANSWER_TIMEOUT)


def test_chat_playground_conversation(server: ServerProcess, browser: Browser) -> None:
    user_id = f"e2e-{uuid.uuid4().hex[:8]}"
    # How the user id gets to the server: the `X-User-Id` header, on every request of the
    # browser context. The chat playground has no config panel (its only control is "Share",
    # with an empty config), and although it loads under a config URL
    # (`/agent/c/<lz-string config>/playground/`), it ignores that config: it posts to
    # `/agent/stream_log` (the `/c/...` part stripped) with `"config": {}`, so the session
    # would be the default user's ("playground"). The header is what a proxy in front of the
    # playground would set; the checks below make sure the session is ours, not "playground".
    context = browser.new_context(
        extra_http_headers={"X-User-Id": user_id},
        viewport={"width": 1280, "height": 1000},  # room for the whole conversation
    )
    context.set_default_timeout(PAGE_TIMEOUT)
    page = context.new_page()
    page_errors: list[Error] = []
    page.on("pageerror", lambda error: page_errors.append(error))
    try:
        # The playground shows its chat box while it loads the runnable's schemas, then
        # keeps it or replaces it with a refusal: wait until the network is quiet first.
        page.goto(f"{server.url}/agent/playground/", wait_until="networkidle")
        expect(
            page.get_by_text(REFUSED),
            "the chat playground refuses the served runnable: it wants an output schema of "
            "type string, or an anyOf/oneOf member whose `type` property is an enum holding "
            f"'ai' (see /agent/output_schema and {SCREENSHOT.relative_to(ROOT)})",
        ).to_have_count(0)
        expect(page.get_by_placeholder(CHAT_BOX)).to_be_visible()

        ask(page, "What's the weather in Tokyo?", "Right now in Tokyo, Japan it's ")
        ask(page, "and tomorrow?", "Tomorrow in Tokyo, Japan: ")
        expect(message(page, "Right now in Tokyo, Japan it's ")).to_be_visible()
        expect(page.locator(MESSAGE)).to_have_count(4)
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)
        context.close()
    assert page_errors == []

    with httpx.Client(base_url=server.url, timeout=30) as http:
        mine = http.get(f"/sessions/{user_id}")
        default = http.get("/sessions/playground")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["userId"] == user_id
    assert body["activeSessions"] == 1
    [session] = body["sessions"]
    assert session["sessionId"].startswith(f"session:{user_id}:")
    assert (session["status"], session["conversationCount"]) == ("active", 2)
    assert default.status_code == 200, default.text
    assert default.json()["activeSessions"] == 0
