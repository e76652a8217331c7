"""A local stand-in for the OpenAI Chat Completions API, for tests of the OpenAI model path.

`OpenAIStub` is a real HTTP/1.1 server on 127.0.0.1 (a free port) running in a background
thread. It answers `POST /v1/chat/completions` the way OpenAI does, with a fixed script:

* the last message is a tool result (role "tool") -> a final assistant answer quoting the
  `temperature` field of that tool result: "It is <temperature> in London." (for a
  forecast result, its days by label and date: "Forecast for <location>: <day> (<date>), ...");
* otherwise -> one tool call, `get_current_weather({"location": "London"})`, or the call
  set with `call_tool()`.

Non-streaming requests get a `chat.completion` object; streaming requests (`"stream": true`)
get `text/event-stream` `chat.completion.chunk` events (tool-call arguments and answer text
split over several deltas, `finish_reason` "tool_calls" / "stop", an optional usage chunk
when `stream_options.include_usage` is set, then `data: [DONE]`).

Every request is recorded (`requests`) so tests can check what the client really sent.
`fail_with()` makes the next requests fail with an OpenAI-style error response instead.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
TOOL_NAME = "get_current_weather"
TOOL_ARGUMENTS = {"location": "London"}
MODEL_SNAPSHOT_SUFFIX = "-2024-07-18"
SYSTEM_FINGERPRINT = "fp_stub0001"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages

    @property
    def tool_names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.body.get("tools", [])]

    @property
    def streaming(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass(frozen=True)
class Failure:
    """An error response for the stub to send instead of an answer.

    `should_retry` sets OpenAI's `x-should-retry` header (None: header left out, so the
    client decides from the status code); `retry_after_ms` sets `retry-after-ms`.
    """

    status: int = 500
    message: str = "The server had an error while processing your request."
    should_retry: bool | None = None
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """What the script answers to one request: text, or one tool call."""

    content: str | None = None
    tool_call: ToolCall | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_call else "stop"


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    failure: Failure | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    tool_call: tuple[str, dict[str, Any]] = (TOOL_NAME, TOOL_ARGUMENTS)


def temperature_answer(tool_content: str) -> str:
    """The scripted final answer for the content of a `get_current_weather` tool message."""
    try:
        temperature = json.loads(tool_content)["temperature"]
    except (ValueError, KeyError, TypeError):
        return f"The weather tool returned something I cannot read: {tool_content!r}"
    return f"It is {temperature} in London."


def forecast_answer(tool_content: str) -> str | None:
    """The scripted final answer for a forecast tool result; None if it is not one."""
    try:
        result = json.loads(tool_content)
        days = ", ".join(f"{day['day']} ({day['date']})" for day in result["days"])
    except (ValueError, KeyError, TypeError):
        return None
    return f"Forecast for {result['location']}: {days}."


def scripted_reply(
    body: dict[str, Any], call_id: str, tool_call: tuple[str, dict[str, Any]] | None = None
) -> Reply:
    """The script: answer from a tool result if there is one, else ask for the weather."""
    name, arguments = tool_call or (TOOL_NAME, TOOL_ARGUMENTS)
    messages: list[dict[str, Any]] = body.get("messages", [])
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        content = last.get("content")
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
            content = "".join(part.get("text", "") for part in content)
        answer = forecast_answer(str(content)) or temperature_answer(str(content))
        return Reply(content=answer)
    offered = {tool["function"]["name"] for tool in body.get("tools", [])}
    if name not in offered:
        return Reply(content=f"I have no {name} tool, so I cannot look up the weather.")
    return Reply(tool_call=ToolCall(call_id, name, json.dumps(arguments)))


def split_text(text: str, pieces: int) -> list[str]:
    """`text` cut into `pieces` consecutive non-empty parts (fewer if it is too short)."""
    pieces = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), pieces)
    parts, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        parts.append(text[start:end])
        start = end
    return parts


def split_words(text: str) -> list[str]:
    """`text` as word tokens the way a model streams them: 'It', ' is', ' 3', ..."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])]


def completion(reply: Reply, *, completion_id: str, model: str, created: int) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_call:
        message["tool_calls"] = [
            {
                "id": reply.tool_call.id,
                "type": "function",
                "function": {"name": reply.tool_call.name, "arguments": reply.tool_call.arguments},
            }
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(),
    }


def completion_chunks(
    reply: Reply, *, completion_id: str, model: str, created: int, include_usage: bool
) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects OpenAI streams for `reply`, in order."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            event["usage"] = None
        return event

    chunks: list[dict[str, Any]] = []
    if reply.tool_call:
        call = reply.tool_call
        chunks.append(
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ],
                    "refusal": None,
                }
            )
        )
        for piece in split_text(call.arguments, 4):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in split_words(reply.content or ""):
            chunks.append(chunk({"content": piece}))
    chunks.append(chunk({}, reply.finish_reason))
    if include_usage:
        chunks.append(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [],
                "usage": _usage(),
            }
        )
    return chunks


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 120,
        "completion_tokens": 12,
        "total_tokens": 132,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked SSE, like api.openai.com
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_unparsed": raw.decode(errors="replace")}
        state = self.server.state
        with state.lock:
            state.requests.append(
                RecordedRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            failure = state.failure
            number = next(state.ids)
            tool_call = state.tool_call

        if self.path != CHAT_COMPLETIONS_PATH:
            self._send_error(404, f"Unknown path {self.path}", "invalid_request_error")
            return
        if failure is not None:
            self._send_failure(failure)
            return
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            self._send_error(400, "'messages' must be a non-empty array", "invalid_request_error")
            return

        reply = scripted_reply(body, call_id=f"call_stub{number:04d}", tool_call=tool_call)
        completion_id = f"chatcmpl-stub{number:04d}"
        requested_model = str(body.get("model", "gpt-4o-mini"))
        model = requested_model + MODEL_SNAPSHOT_SUFFIX
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = completion_chunks(
                reply,
                completion_id=completion_id,
                model=model,
                created=created,
                include_usage=include_usage,
            )
            self._send_sse(events)
        else:
            self._send_json(
                200, completion(reply, completion_id=completion_id, model=model, created=created)
            )

    def do_GET(self) -> None:
        self._send_error(404, f"Unknown path {self.path}", "invalid_request_error")

    def _send_json(self, status: int, payload: dict[str, Any], **headers: str) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_stub")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, status: int, message: str, kind: str, **headers: str) -> None:
        error = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        self._send_json(status, error, **headers)

    def _send_failure(self, failure: Failure) -> None:
        headers: dict[str, str] = {}
        if failure.should_retry is not None:
            headers["x_should_retry"] = "true" if failure.should_retry else "false"
        if failure.retry_after_ms is not None:
            headers["retry_after_ms"] = str(failure.retry_after_ms)
        kind = "server_error" if failure.status >= 500 else "invalid_request_error"
        self._send_error(failure.status, failure.message, kind, **headers)

    def _send_sse(self, events: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", "req_stub")
        self.end_headers()
        for event in events:
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")  # end of the chunked body
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


class OpenAIStub:
    """The stand-in server. `start()` / `stop()` it (or use it as a context manager)."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> OpenAIStub:
        if self._server is not None:
            raise RuntimeError("the OpenAI stub is already running")
        self._server = _Server(self._state)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-stub-{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; the port then refuses connections. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the OpenAI stub was never started")
        return self._port

    @property
    def base_url(self) -> str:
        """What `OPENAI_BASE_URL` should be: `http://127.0.0.1:<port>/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """Ask for this tool call (instead of `get_current_weather` in London) from now on."""
        with self._state.lock:
            self._state.tool_call = (name, arguments)

    def fail_with(self, failure: Failure | None) -> None:
        """Answer every following request with `failure` (None: back to the script)."""
        with self._state.lock:
            self._state.failure = failure
