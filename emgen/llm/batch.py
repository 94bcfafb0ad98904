"""The OpenAI Batch API for large builds (``--batch``): half the price, replies within 24 hours.

The requests a build has ready at once go out as one batch per model: written as JSONL lines
(``custom_id`` is the request's cache key), uploaded with purpose ``batch``, created on
``/v1/chat/completions``, polled until it ends, then the output and error files are downloaded
and every reply is committed to the response cache before the batch is forgotten.

Every batch not yet collected is recorded in ``batch-state.json`` in the output folder. A build
interrupted at any point (uploading, validating, in progress, finalizing, completed but not yet
downloaded) finds its batch there when the same command runs again, because the same recipe asks
the same requests: it polls and collects that batch instead of paying for a new one. The file
disappears once every batch in it is collected. Requests an expired or cancelled batch did not
run, and lines that failed with a transient error, go into the next batch.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import openai

from emgen.errors import EmgenError, LLMError
from emgen.llm import retry
from emgen.output import write_text_atomic

STATE_FILE = "batch-state.json"
ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
DEFAULT_POLL_SECONDS = 30.0

T = TypeVar("T")
Store = Callable[[str, dict[str, Any], dict[str, Any]], None]
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class LineResult:
    """One request's outcome in a batch: ``payload`` is the chat completion when it ran (``status`` 200)."""

    status: int | None
    payload: dict[str, Any] | None
    message: str = ""
    code: str | None = None


class BatchState:
    """``batch-state.json``: the batches of this output folder not yet collected, with their request keys."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        self.entries: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise EmgenError(f"{self.path}: not a readable batch state file ({exc}); delete it to start over") from None
        batches = data.get("batches") if isinstance(data, dict) else None
        if not isinstance(batches, list) or not all(_valid_entry(e) for e in batches):
            raise EmgenError(f"{self.path}: not an emgen batch state file; delete it to start over")
        return batches

    def matching(self, model: str, keys: set[str]) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["model"] == model and keys.intersection(e["keys"])]

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)
        self._save()

    def remove(self, batch_id: str) -> None:
        self.entries = [e for e in self.entries if e["id"] != batch_id]
        self._save()

    def _save(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        write_text_atomic(self.path, json.dumps({"batches": self.entries}, indent=1) + "\n")


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("id"), str)
        and isinstance(entry.get("model"), str)
        and isinstance(entry.get("keys"), list)
    )


class Batcher:
    """Collects one model's requests while a build has no other work, then runs them as one batch."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        state: BatchState,
        store: Store,
        *,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_retries: int = 8,
        backoff: retry.Backoff | None = None,
        secret: str = "",
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.state = state
        self.store = store
        self.poll_seconds = poll_seconds
        self.max_retries = max_retries
        self.backoff = backoff or retry.Backoff()
        self.secret = secret
        self.progress = progress
        self.pending: dict[str, tuple[dict[str, Any], asyncio.Future[LineResult]]] = {}
        self.created: list[str] = []
        self.resumed: list[str] = []
        self.current: dict[str, Any] | None = None
        self._rng = random.Random(f"batch:{model}")

    @property
    def waiting(self) -> int:
        """Requests waiting for a batch (not those whose batch has ended but that have not run on yet)."""
        return sum(1 for _, future in self.pending.values() if not future.done())

    async def submit(self, key: str, body: dict[str, Any]) -> LineResult:
        """The outcome of ``body`` once a batch holding it has ended."""
        future: asyncio.Future[LineResult] = asyncio.get_running_loop().create_future()
        self.pending[key] = (body, future)
        try:
            return await future
        finally:
            if self.pending.get(key, (None, None))[1] is future:
                del self.pending[key]

    async def flush(self) -> None:
        """Collect the recorded batches that hold waiting requests, then send the rest as a new batch."""
        pending = dict(self.pending)
        for entry in self.state.matching(self.model, set(pending)):
            if await self._collect(entry, pending, resumed=True):
                self.resumed.append(entry["id"])
        rest = {key: value for key, value in pending.items() if not value[1].done()}
        if rest:
            entry = await self._create(rest)
            await self._collect(entry, rest)

    async def _create(self, requests: dict[str, tuple[dict[str, Any], Any]]) -> dict[str, Any]:
        lines = [
            json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}, ensure_ascii=False)
            for key, (body, _) in requests.items()
        ]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        upload = await self._call(lambda: self.client.files.create(file=("emgen-batch.jsonl", data), purpose="batch"))
        assert upload is not None
        batch = await self._call(
            lambda: self.client.batches.create(
                input_file_id=upload.id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW
            )
        )
        assert batch is not None
        entry = {"id": batch.id, "model": self.model, "input_file_id": upload.id, "keys": list(requests)}
        self.state.add(entry)
        self.created.append(batch.id)
        self._report(batch)
        return entry

    async def _collect(
        self, entry: dict[str, Any], pending: dict[str, tuple[dict[str, Any], Any]], *, resumed: bool = False
    ) -> bool:
        """Poll ``entry``'s batch until it ends, store its replies, resolve the waiting requests, forget it.

        A recorded batch the endpoint no longer knows is forgotten (False): its requests go into a new one.
        """
        while True:
            batch = await self._call(lambda: self.client.batches.retrieve(entry["id"]), missing_ok=resumed)
            if batch is None:
                self.state.remove(entry["id"])
                return False
            self._report(batch)
            if batch.status in TERMINAL:
                break
            await asyncio.sleep(self.poll_seconds)
        if batch.status == "failed":
            self.state.remove(entry["id"])
            errors = [e.message for e in (batch.errors.data if batch.errors and batch.errors.data else []) if e]
            raise LLMError(f"batch {batch.id} failed: {'; '.join(str(e) for e in errors) or 'no reason given'}")
        results: dict[str, LineResult] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._call(lambda file_id=file_id: self.client.files.content(file_id), missing_ok=True)
                results.update(_read_lines(content.text) if content is not None else {})
        for key in entry["keys"]:
            result = results.get(key)
            if key in pending and result is not None and result.payload is not None:
                self.store(key, pending[key][0], result.payload)
        for key in entry["keys"]:
            if key in pending and not pending[key][1].done():
                message = f"not run: batch {batch.id} {batch.status}"
                pending[key][1].set_result(results.get(key) or LineResult(None, None, message, batch.status))
        self.state.remove(entry["id"])
        self.current = None
        return True

    def _report(self, batch: Any) -> None:
        counts = batch.request_counts
        self.current = {
            "id": batch.id,
            "status": batch.status,
            "completed": counts.completed if counts else 0,
            "failed": counts.failed if counts else 0,
            "total": counts.total if counts else 0,
        }
        if self.progress is not None:
            self.progress(self.current)

    async def _call(self, make: Callable[[], Awaitable[T]], *, missing_ok: bool = False) -> T | None:
        """An API call retried on transient failures; a fatal one is a one-line LLMError (None for a 404
        when ``missing_ok``)."""
        attempt = 0
        while True:
            try:
                return await make()
            except openai.NotFoundError as exc:
                if not missing_ok:
                    raise LLMError(
                        f"the endpoint answered a Batch API request with {retry.describe(exc, self.secret)}; "
                        "if it has no Batch API, build without --batch"
                    ) from None
                return None
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                if not retry.is_transient(exc):
                    raise LLMError(f"the Batch API refused a request: {retry.describe(exc, self.secret)}") from None
                if attempt >= self.max_retries:
                    raise LLMError(
                        f"the Batch API failed {attempt + 1} times; last error: {retry.describe(exc, self.secret)}. "
                        "Run the same command to resume"
                    ) from None
                headers = exc.response.headers if isinstance(exc, openai.APIStatusError) else None
                await asyncio.sleep(self.backoff.delay(attempt, self._rng, retry.retry_after(headers)))
                attempt += 1


def _read_lines(text: str) -> dict[str, LineResult]:
    """Results by ``custom_id`` from an output or error file; unreadable lines are left out (re-run)."""
    results = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
            key = row["custom_id"]
        except (ValueError, KeyError, TypeError):
            continue
        response = row.get("response") or {}
        body = response.get("body")
        status = response.get("status_code")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("choices"), list) and body["choices"]:
            results[key] = LineResult(200, body)
            continue
        error = row.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
        message = str(error.get("message") or "no result") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        results[key] = LineResult(status, None, message, code)
    return results
