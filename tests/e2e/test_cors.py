"""Web pages on other origins calling the API from a real browser (CORS).

A page is served from its own local origin (another port) and, as an old browser client of
the original service would, posts to `/chat` without a `userId` and reads the answer. With
AUTH_MODE=none any origin may; with AUTH_MODE=token only the origins in CORS_ORIGINS may,
and a page from any other origin is stopped by the browser before its message is sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from server.auth import mint
from session_policy.redis_server import EmbeddedRedis
from tests.server_process import ServerProcess

SECRET = "cors-secret-0123456789abcdef-0123456789"
WAIT_MS = 90_000  # how long Playwright polls for the page's result, not a speed limit

# The page: the API's URL in `?api=`, a token (if any) in the fragment. It shows the answer,
# or the error the browser gave its script, in #result, and /history's Deprecation in #notice.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>old chat client</title></head>
<body><p id="result">waiting</p><p id="notice"></p>
<script>
(async () => {
  const api = new URLSearchParams(location.search).get("api");
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const headers = {"Content-Type": "application/json"};
  if (token) headers["Authorization"] = "Bearer " + token;
  try {
    const response = await fetch(api + "/chat", {
      method: "POST", headers, body: JSON.stringify({message: "What's the weather in Paris?"}),
    });
    const body = await response.json();
    document.getElementById("result").textContent =
      "answer " + response.status + " " + body.userId + ": " + body.response;
    const history = await fetch(api + "/history/" + body.userId, {headers});
    document.getElementById("notice").textContent =
      "deprecation " + history.headers.get("Deprecation");
  } catch (error) {
    document.getElementById("result").textContent = "failed: " + error;
  }
})();
</script></body></html>
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def page_origins() -> Iterator[tuple[str, str]]:
    """Two local origins serving the page (two ports): the first is the one token mode names."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Page) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def secured(server_redis: EmbeddedRedis, page_origins: tuple[str, str]) -> Iterator[ServerProcess]:
    allowed, _ = page_origins
    process = ServerProcess(
        server_redis.url, AUTH_MODE="token", AUTH_SECRET=SECRET, CORS_ORIGINS=allowed
    ).start()
    yield process
    process.stop()


def open_page(browser: Browser, origin: str, api: str, token: str | None = None) -> tuple[str, str]:
    """The page's result and notice once its script is done."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{origin}/?api={api}" + (f"#token={token}" if token else ""))
        result = page.locator("#result")
        expect(result).not_to_have_text("waiting", timeout=WAIT_MS)
        if result.inner_text().startswith("answer"):
            expect(page.locator("#notice")).not_to_be_empty(timeout=WAIT_MS)
        return result.inner_text(), page.locator("#notice").inner_text()
    finally:
        context.close()


def test_any_origin_may_call_without_auth(
    server: ServerProcess, browser: Browser, page_origins: tuple[str, str]
) -> None:
    for origin in page_origins:
        result, notice = open_page(browser, origin, server.url)
        assert result.startswith("answer 200 default: Right now in Paris, "), result
        assert notice.startswith("deprecation @"), notice


def test_token_mode_lets_only_the_named_origin_in(
    secured: ServerProcess, browser: Browser, page_origins: tuple[str, str]
) -> None:
    allowed, other = page_origins
    user = f"cors-{uuid.uuid4().hex[:8]}"
    token = mint(SECRET, user)
    result, notice = open_page(browser, allowed, secured.url, token)
    assert result.startswith(f"answer 200 {user}: Right now in Paris, "), result
    assert notice.startswith("deprecation @"), notice

    refused, _ = open_page(browser, other, secured.url, token)
    assert refused == "failed: TypeError: Failed to fetch"
    # The browser stopped it at the preflight: the message never reached the agent.
    history = httpx.get(
        f"{secured.url}/sessions/{user}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert history["sessions"][0]["conversationCount"] == 1
