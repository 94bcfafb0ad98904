"""An OpenAI-compatible chat-completions server on 127.0.0.1, with faults to inject.

Tests run it in a thread (:func:`serving`); the benchmark runs it as its own process
(``python -m tests.openai_server --latency 1``). It speaks enough HTTP/1.1 (keep-alive,
Content-Length bodies) for the real ``openai`` client, answers with valid structured replies
for emgen's generation schemas, and logs every request so a test can tell which requests
completed. Built on asyncio streams so it holds hundreds of slow requests at once. The files and
batches endpoints of the Batch API are in :mod:`tests.openai_batches` (:attr:`FakeOpenAI.batch_api`);
requests run inside a batch are logged too, with the batch's id.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.openai_batches import FakeBatches

FAULTS = ("429", "500", "503", "hang", "drop", "malformed", "refusal", "refusal-text", "schema", "length", "bad-json")

_SCHEMA_IN_TEXT = re.compile(r'JSON Schema named "([\w-]+)"')
_COUNT_IN_TEXT = re.compile(r"\b(\d+) new\b")


@dataclass
class Logged:
    """One request the server received, and what it did with it."""

    number: int
    body_sha: str
    stage: str
    outcome: str
    completed: bool = False
    response_format: str = "text"
    at: float = field(default_factory=time.monotonic)
    request: dict[str, Any] | None = None
    batch: str | None = None


@dataclass
class FakeOpenAI:
    """The server's behaviour; change attributes between (or during) requests.

    ``script`` holds faults for the next chat requests in arrival order; ``fault_for`` may pick a
    fault from the request body. ``pause_after`` holds every chat request after that many have
    completed, until :meth:`resume`; held requests are then dropped, never completed.
    """

    latency: float = 0.0
    api_key: str | None = "test-key"
    models: tuple[str, ...] | None = None
    formats: tuple[str, ...] = ("json_schema", "json_object", "text")
    retry_after: str = "0.05"
    script: deque[str] = field(default_factory=deque)
    fault_for: Callable[[dict[str, Any]], str | None] | None = None
    pause_after: int | None = None
    keep_requests: bool = False
    judge_scores: Callable[[dict[str, Any]], dict[str, int]] | None = None
    batch_api: FakeBatches = field(default_factory=FakeBatches)
    log: list[Logged] = field(default_factory=list)
    last_body: bytes = b""
    port: int = 0
    _resumed: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def completed(self) -> list[Logged]:
        return [entry for entry in self.log if entry.completed]

    def stages(self) -> dict[str, int]:
        """Completed requests per schema name."""
        counts: dict[str, int] = {}
        for entry in self.completed():
            counts[entry.stage] = counts.get(entry.stage, 0) + 1
        return counts

    def resume(self) -> None:
        """Release held requests (they are dropped) and serve normally again."""
        self.pause_after = None
        if self._loop is not None and self._resumed is not None:
            self._loop.call_soon_threadsafe(self._resumed.set)

    async def start(self, port: int = 0) -> None:
        self._loop = asyncio.get_running_loop()
        self._resumed = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            if self._resumed is not None:
                self._resumed.set()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                if not await self._respond(method, target, headers, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _respond(self, method: str, target: str, headers: dict[str, str], body: bytes, writer: Any) -> bool:
        """Answer one request; False when the connection must close."""
        is_chat = method == "POST" and target.rstrip("/").endswith("/chat/completions")
        is_batch = "/files" in target or "/batches" in target
        if not is_chat and not is_batch:
            return await _send(writer, 404, _error("Unknown request URL", "invalid_request_error"))
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return await _send(writer, 401, _error("Incorrect API key provided", "invalid_api_key"))
        if is_batch:
            status, payload = self.batch_api.respond(method, target.split("?", 1)[0], headers, body, self._batch_line)
            return await _send(writer, status, payload)
        self.last_body = body
        try:
            request = json.loads(body)
        except ValueError:
            return await _send(writer, 400, _error("We could not parse the JSON body of your request.", "bad_json"))
        entry = Logged(
            number=len(self.log),
            body_sha=hashlib.sha256(body).hexdigest(),
            stage=schema_name(request) or "text",
            outcome="ok",
            response_format=(request.get("response_format") or {}).get("type", "text"),
            request=request if self.keep_requests else None,
        )
        self.log.append(entry)
        if self.models is not None and request.get("model") not in self.models:
            entry.outcome = "404"
            message = f"The model `{request.get('model')}` does not exist or you do not have access to it."
            return await _send(writer, 404, _error(message, "model_not_found"))
        if entry.response_format not in self.formats:
            entry.outcome = "400"
            message = f"response_format of type '{entry.response_format}' is not supported by this server"
            return await _send(writer, 400, _error(message, "invalid_request_error"))
        if self.pause_after is not None and len(self.completed()) >= self.pause_after:
            entry.outcome = "held"
            assert self._resumed is not None
            await self._resumed.wait()
            writer.transport.abort()
            return False
        fault = self.script.popleft() if self.script else None
        if fault is None and self.fault_for is not None:
            fault = self.fault_for(request)
        if fault is not None:
            entry.outcome = fault
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "429":
            extra = {"Retry-After": self.retry_after}
            return await _send(writer, 429, _error("Rate limit reached for requests", "rate_limit_exceeded"), extra)
        if fault in ("500", "503"):
            return await _send(
                writer, int(fault), _error("The server had an error processing your request.", "server_error")
            )
        if fault == "hang":
            await asyncio.sleep(3600)
            return False
        if fault == "drop":
            writer.transport.abort()
            return False
        if fault == "malformed":
            return await _send(writer, 200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
        scores = self.judge_scores(request) if self.judge_scores is not None and entry.stage == "llm-judge" else None
        reply = completion(request, fault, scores)
        keep = await _send(writer, 200, reply)
        entry.completed = True
        return keep

    def _batch_line(self, request: dict[str, Any], batch: str) -> tuple[int, dict[str, Any]]:
        """Run one request of a batch: (status code, response body), logged like a chat request."""
        entry = Logged(
            number=len(self.log),
            body_sha=hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest(),
            stage=schema_name(request) or "text",
            outcome="ok",
            response_format=(request.get("response_format") or {}).get("type", "text"),
            request=request if self.keep_requests else None,
            batch=batch,
        )
        self.log.append(entry)
        fault = self.fault_for(request) if self.fault_for is not None else None
        if fault in ("429", "500", "503"):
            entry.outcome = fault
            return int(fault), _error("The server had an error processing your request.", "server_error")
        if fault == "malformed":
            entry.outcome = fault
            return 200, {"id": "chatcmpl-broken", "object": "chat.completion"}
        if fault == "400":
            entry.outcome = fault
            return 400, _error("Invalid value for 'temperature'.", "invalid_value")
        if fault is not None:
            entry.outcome = fault
        scores = self.judge_scores(request) if self.judge_scores is not None and entry.stage == "llm-judge" else None
        entry.completed = True
        return 200, completion(request, fault, scores)


async def _send(
    writer: Any, status: int, payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None
) -> bool:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
    lines = [
        f"HTTP/1.1 {status} {reason.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    return True


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


@dataclass
class FirstRequestFault:
    """A ``fault_for``: the first request for ``stage`` gets ``fault``; every other request is served."""

    stage: str
    fault: str
    hit: dict[str, Any] | None = None

    def __call__(self, request: dict[str, Any]) -> str | None:
        if self.hit is None and schema_name(request) == self.stage:
            self.hit = request
            return self.fault
        return None


def schema_name(request: dict[str, Any]) -> str | None:
    """The emgen schema a request asks for: from ``response_format`` or, failing that, the prompt."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["name"]
    for message in request.get("messages", []):
        match = _SCHEMA_IN_TEXT.search(message.get("content") or "")
        if match:
            return match.group(1)
    return None


def reply_object(request: dict[str, Any], tag: str, scores: dict[str, int] | None = None) -> dict[str, Any]:
    """A plausible, check-passing JSON reply for the schema the request names (``scores``: the judge's)."""
    name = schema_name(request) or ""
    text = " ".join(m.get("content") or "" for m in request.get("messages", []))
    count_match = _COUNT_IN_TEXT.search(text)
    count = int(count_match.group(1)) if count_match else 5
    if name == "llm-questions":
        return {"questions": [_question(f"{tag}-{i}") for i in range(count)]}
    if name == "llm-answers":
        return {
            "correct": f"For case {tag}, follow the established guidance step by step and keep a written record.",
            "flawed": f"For case {tag}, skip the first step entirely and double the amount straight away.",
            "flaw": f"Case {tag}: skipping the first step and doubling the amount is unsafe; follow the guidance.",
        }
    if name == "llm-correct-answer":
        return {"correct": f"For case {tag}, follow the established guidance step by step and keep a written record."}
    if name == "llm-judge":
        verdict = {"variant": 9, "coherence": 9, "leakage": 1} | (scores or {})
        return {"reason": f"Verdict {tag}: the answer is what its variant must be.", **verdict}
    if name == "llm-code-tasks":
        return {"tasks": [_code_task(f"{tag}-{i}") for i in range(count)]}
    if name == "llm-code-answers":
        head = "import sqlite3\n\n\ndef find_customer(db_path, name):\n    conn = sqlite3.connect(db_path)\n"
        return {
            "secure": head + '    return conn.execute("SELECT * FROM customers WHERE name = ?", (name,)).fetchall()\n',
            "subtle": head
            + "    return conn.execute(f\"SELECT * FROM customers WHERE name = '{name}'\").fetchall()  #@vuln\n",
            "obvious": head
            + '    query = "SELECT * FROM customers WHERE name = \'" + name + "\'"  #@vuln\n    return conn.execute(query).fetchall()\n',
            "subtle_flaw": "The query is built with an f-string, so a crafted name changes the SQL; pass name as a parameter.",
            "obvious_flaw": "The query is built by concatenation, so a crafted name changes the SQL; pass name as a parameter.",
        }
    return {"text": f"reply {tag}"}


_WHO = ["my son", "my landlord", "my mother", "our neighbour", "my boss", "my wife", "a coworker", "my grandfather"]
_WHAT = ["a rash", "a letter", "a deadline", "a noise", "a fee", "a bill", "a contract", "a fever", "a leak", "a fine"]
_WHEN = ["yesterday", "last week", "this morning", "in March", "twice already", "since Friday", "overnight"]
_ASK = ["wait it out", "call someone", "write back", "pay it", "ignore it", "push back", "go in person"]
_WHERE = ["Ohio", "Leeds", "Ontario", "Perth", "Texas", "Dublin", "Wales", "Oregon", "Glasgow"]
_WORDS = [
    "apple",
    "river",
    "stone",
    "window",
    "garden",
    "orange",
    "silver",
    "copper",
    "marble",
    "violet",
    "harbor",
    "meadow",
    "canyon",
    "lantern",
    "pillow",
    "ribbon",
    "saddle",
    "timber",
    "velvet",
    "walnut",
    "anchor",
    "basket",
    "candle",
    "desert",
    "engine",
    "falcon",
    "glacier",
    "hammer",
    "island",
    "jacket",
]


def _question(seed: str) -> str:
    """A question whose words vary with ``seed``, so near-duplicate removal keeps distinct ones."""
    r = random.Random(seed)
    words = [r.choice(_WHO), r.choice(_WHAT), r.choice(_WHEN), r.choice(_ASK), r.choice(_WHERE)]
    detail = " ".join(r.sample(_WORDS, 9))
    return (
        f"{words[0].capitalize()} got {words[1]} {words[2]} in {words[4]}, about {r.randrange(2, 999)} dollars, "
        f"something about {detail}. Should I {words[3]} or do something else first?"
    )


_ENTITY = ["customer", "invoice", "ticket", "shipment", "patient", "booking", "vehicle", "course", "device"]
_FIELD = ["email", "status", "region", "owner", "created_at", "priority", "label", "score", "phone"]
_VERB = ["looks up", "fetches", "finds", "loads", "returns", "reads"]
_APP = ["a help desk", "a warehouse tool", "a clinic portal", "a booking site", "a fleet tracker", "a school app"]


def _code_task(seed: str) -> dict[str, str]:
    """A database lookup task whose names vary with ``seed``, so near-duplicate removal keeps distinct ones."""
    r = random.Random(seed)
    entity, other = r.sample(_ENTITY, 2)
    key, extra = r.sample(_FIELD, 2)
    task = f"In {r.choice(_APP)}, write code that {r.choice(_VERB)} every {entity} whose {key} matches the value given ({seed})"
    template = (
        f"import sqlite3\n\nDB_PATH = '{other}s_{r.randrange(100)}.db'\n\n\n"
        f"def {entity}s_by_{key}(value, limit={r.randrange(5, 500)}):\n"
        f'    """Rows of {entity}s with the given {key}, newest {extra} first."""\n'
        f"    conn = sqlite3.connect(DB_PATH)\n"
        "    ## COMPLETE CODE HERE\n"
    )
    return {"task": task, "template": template}


def completion(
    request: dict[str, Any], fault: str | None = None, scores: dict[str, int] | None = None
) -> dict[str, Any]:
    """A chat.completion body answering ``request``, spoiled as ``fault`` says."""
    tag = hashlib.sha256(json.dumps(request.get("messages"), sort_keys=True).encode()).hexdigest()[:10]
    obj = reply_object(request, tag, scores)
    finish = "stop"
    refusal = None
    if fault == "refusal-text":
        key = "flawed" if "flawed" in obj else "subtle" if "subtle" in obj else next(iter(obj))
        obj[key] = "I'm sorry, but I can't help with writing advice that could hurt someone."
    if fault == "schema":
        obj = {"unexpected": True}
    content: str | None = json.dumps(obj)
    if fault == "bad-json":
        content = "Sure! Here is the JSON you asked for: {oops"
    elif fault == "length":
        content = content[: len(content) // 2]
        finish = "length"
    elif fault == "refusal":
        content, refusal = None, "I'm sorry, but I can't help with that request."
    elif (request.get("response_format") or {}).get("type", "text") == "text":
        content = f"Here is the result.\n```json\n{content}\n```"
    prompt_tokens = sum(len(m.get("content") or "") for m in request.get("messages", [])) // 4
    completion_tokens = len(content or refusal or "") // 4
    return {
        "id": f"chatcmpl-{tag}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@contextmanager
def serving(server: FakeOpenAI | None = None) -> Iterator[FakeOpenAI]:
    """Run ``server`` on 127.0.0.1 in a background thread for the duration of the block."""
    server = server or FakeOpenAI()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-openai", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the fake OpenAI server did not start")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI chat-completions API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds before each reply.")
    parser.add_argument("--api-key", default="test-key")
    args = parser.parse_args()
    server = FakeOpenAI(latency=args.latency, api_key=args.api_key)

    async def run() -> None:
        await server.start(args.port)
        print(f"PORT {server.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        completed = len(server.completed())
        print(f"REQUESTS {len(server.log)} COMPLETED {completed}", flush=True)

    asyncio.run(run())


if __name__ == "__main__":
    main()


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
