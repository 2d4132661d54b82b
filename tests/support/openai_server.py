"""pytest plugin: an OpenAI-compatible chat-completions server on loopback.

The server runs in a background thread (one thread per connection), so it answers
whichever event loop the test uses.  Replies are scripted: ``enqueue`` puts replies in a
queue answered in order; when the queue is empty ``responder(request_json)`` decides.

Fixtures:
    openai_server: a running :class:`OpenAIServer` (``.base_url`` ends in ``/v1``).
    llm_settings: :class:`console.settings.Settings` pointed at that server
        (model ``test-model``, api key ``sk-test``).

Reply builders (module functions, also available as methods of the server object):
    chat_reply(content, *, prompt_tokens=10, completion_tokens=5, cached_tokens=0,
        reasoning_tokens=0, tool_calls=None, finish_reason=None, chunk_size=8,
        drop_after=None)
    error_reply(status, body=None, headers=None)
    hang_reply(seconds, then=None)
    raw_reply(payload, status=200): exactly ``payload`` as the JSON body (malformed
        completions: no choices, no usage, null content)
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.settings import LlmSettings, Settings


@dataclass
class ChatReply:
    """A successful chat completion (or, for streaming requests, its SSE chunks)."""

    content: str
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    chunk_size: int = 8
    drop_after: int | None = None


@dataclass
class ErrorReply:
    """An HTTP error status with an OpenAI-style error body."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class HangReply:
    """Say nothing for ``seconds`` (the client should time out), then answer ``then``."""

    seconds: float
    then: ChatReply | ErrorReply | None = None


@dataclass
class RawReply:
    """Exactly ``payload`` as the JSON response body, with ``status``."""

    payload: dict[str, Any]
    status: int = 200


Reply = ChatReply | ErrorReply | HangReply | RawReply


def raw_reply(payload: dict[str, Any], status: int = 200) -> RawReply:
    """A response whose JSON body is ``payload`` as given (for malformed completions)."""
    return RawReply(payload, status)


def chat_reply(
    content: str,
    *,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    chunk_size: int = 8,
    drop_after: int | None = None,
) -> ChatReply:
    """A completion with ``content`` and a usage block.

    ``tool_calls`` items are ``{"name": str, "arguments": dict | str, "id": str (optional)}``.
    Streaming requests receive ``content`` in pieces of ``chunk_size`` characters; with
    ``drop_after=N`` the connection is cut after N SSE events (a dropped stream).
    """
    return ChatReply(
        content,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        chunk_size=max(1, chunk_size),
        drop_after=drop_after,
    )


def error_reply(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> ErrorReply:
    """An error response, e.g. ``error_reply(429, headers={"Retry-After": "0.05"})``."""
    return ErrorReply(status, body, dict(headers or {}))


def hang_reply(seconds: float, then: ChatReply | ErrorReply | None = None) -> HangReply:
    """Hold the request for ``seconds`` before answering (default: an empty completion)."""
    return HangReply(seconds, then)


def default_responder(request: dict[str, Any]) -> Reply:
    """Used when the queue is empty: answers ``ok`` with 10 input / 5 output tokens."""
    return chat_reply("ok")


def _tool_calls_json(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate(calls):
        args = call.get("arguments", {})
        out.append(
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def _usage_json(reply: ChatReply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class OpenAIServer:
    """A scripted OpenAI-compatible server; see the module docstring."""

    chat_reply = staticmethod(chat_reply)
    error_reply = staticmethod(error_reply)
    hang_reply = staticmethod(hang_reply)
    raw_reply = staticmethod(raw_reply)

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder: Callable[[dict[str, Any]], Reply] = default_responder
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- scripting ----------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._queue.extend(replies)

    def pending(self) -> int:
        """How many enqueued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            if self._queue:
                return self._queue.popleft()
        return self.responder(body)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP ---------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle plus the
            # peer's delayed ACK adds ~40 ms to every keep-alive response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # keep test output quiet

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._send_json(200, {"object": "list", "data": []})
                else:
                    self._send_json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send_json(400, {"error": {"message": "invalid JSON body"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = server._next_reply(body)
                try:
                    self._answer(body, reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to tell it

            def _answer(self, body: dict[str, Any], reply: Reply) -> None:
                if isinstance(reply, HangReply):
                    if server._stopping.wait(reply.seconds):
                        return
                    reply = reply.then or chat_reply("")
                if isinstance(reply, RawReply):
                    self._send_json(reply.status, reply.payload)
                    return
                if isinstance(reply, ErrorReply):
                    payload = reply.body or {
                        "error": {
                            "message": f"scripted error {reply.status}",
                            "type": "server_error" if reply.status >= 500 else "invalid_request",
                            "code": None,
                        }
                    }
                    self._send_json(reply.status, payload, reply.headers)
                elif body.get("stream"):
                    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                    self._send_stream(body, reply, include_usage)
                else:
                    self._send_json(200, self._completion(body, reply))

            def _completion(self, body: dict[str, Any], reply: ChatReply) -> dict[str, Any]:
                message: dict[str, Any] = {"role": "assistant", "content": reply.content}
                if reply.tool_calls:
                    message["tool_calls"] = _tool_calls_json(reply.tool_calls)
                finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
                return {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test-model"),
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": _usage_json(reply),
                }

            def _send_json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def _send_stream(self, body: dict[str, Any], reply: ChatReply, usage: bool) -> None:
                base = {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "test-model"),
                }

                def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                    choice = {"index": 0, "delta": delta, "finish_reason": finish}
                    return {**base, "choices": [choice]}

                events = [chunk({"role": "assistant", "content": ""})]
                text, size = reply.content, reply.chunk_size
                events += [
                    chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)
                ]
                if reply.tool_calls:
                    calls = _tool_calls_json(reply.tool_calls)
                    for i, call in enumerate(calls):
                        events.append(chunk({"tool_calls": [{"index": i, **call}]}))
                finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
                events.append(chunk({}, finish))
                if usage:
                    events.append({**base, "choices": [], "usage": _usage_json(reply)})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                payloads = [f"data: {json.dumps(event)}\n\n".encode() for event in events]
                payloads.append(b"data: [DONE]\n\n")
                for sent, payload in enumerate(payloads):
                    if reply.drop_after is not None and sent >= reply.drop_after:
                        # Cut the connection mid-body: no terminating chunk.
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running loopback OpenAI-compatible server, stopped after the test."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def llm_settings(openai_server: OpenAIServer, db_path: Path) -> Settings:
    """Settings whose LLM endpoint is ``openai_server`` (model ``test-model``)."""
    return Settings(
        db=db_path,
        llm=LlmSettings(
            base_url=openai_server.base_url,
            model="test-model",
            api_key="sk-test",
            timeout=10.0,
            max_retries=2,
        ),
    )
