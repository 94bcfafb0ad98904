"""The files and batches endpoints of the loopback OpenAI server (:mod:`tests.openai_server`).

``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}`` and ``POST /v1/batches/{id}/cancel``. A batch
moves one step along :attr:`FakeBatches.plan` at each retrieve (``validating`` → ``in_progress``
→ ``finalizing`` → ``completed`` by default) and runs its requests when it reaches the end: all of
them for ``completed``, the first :attr:`FakeBatches.finish` for ``expired`` or ``cancelled`` (the
rest go to the error file as ``batch_expired`` / ``batch_cancelled``), none for ``failed``.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("completed", "expired", "failed", "cancelled")
Executor = Callable[[dict[str, Any], str], tuple[int, dict[str, Any]]]


@dataclass
class FakeFile:
    id: str
    purpose: str
    filename: str
    data: bytes

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": int(time.time()),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    plan: tuple[str, ...]
    finish: int | None
    step: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    retrieved: int = 0

    @property
    def status(self) -> str:
        return self.plan[self.step]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(time.time()),
            "request_counts": dict(self.counts),
            "metadata": None,
        }


@dataclass
class FakeBatches:
    """State of the files and batches endpoints; ``plans`` gives the n-th batch (from 1) its own plan."""

    plan: tuple[str, ...] = ("validating", "in_progress", "finalizing", "completed")
    finish: int | None = None
    plans: dict[int, tuple[str, ...]] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    batches: dict[str, FakeBatch] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes, run: Executor) -> tuple[int, Any]:
        """(status, JSON payload or raw bytes) for a files or batches request."""
        self.requests.append(f"{method} {path}")
        parts = path.strip("/").split("/")
        if parts[:2] != ["v1", "files"] and parts[:2] != ["v1", "batches"]:
            return 404, _error("Unknown request URL", "unknown_url")
        if method == "POST" and parts == ["v1", "files"]:
            return self._upload(headers.get("content-type", ""), body)
        if method == "GET" and len(parts) == 4 and parts[1] == "files" and parts[3] == "content":
            file = self.files.get(parts[2])
            return (200, file.data) if file else (404, _error(f"No such File object: {parts[2]}", "not_found"))
        if method == "POST" and parts == ["v1", "batches"]:
            return self._create(json.loads(body or b"{}"))
        if len(parts) >= 3 and parts[1] == "batches":
            batch = self.batches.get(parts[2])
            if batch is None:
                return 404, _error(f"No batch found with id '{parts[2]}'.", "not_found")
            if method == "GET" and len(parts) == 3:
                self._advance(batch, run)
                return 200, batch.describe()
            if method == "POST" and parts[3:] == ["cancel"]:
                batch.plan = (*batch.plan[: batch.step + 1], "cancelled")
                return 200, batch.describe()
        return 404, _error("Unknown request URL", "unknown_url")

    def _upload(self, content_type: str, body: bytes) -> tuple[int, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "file" not in fields or "purpose" not in fields:
            return 400, _error("Missing required parameter: 'file' and 'purpose'.", "invalid_request_error")
        purpose = fields["purpose"][1].decode()
        if purpose != "batch":
            return 400, _error(f"'{purpose}' is not a supported purpose for this server.", "invalid_request_error")
        file = FakeFile(f"file-{len(self.files) + 1:04d}", purpose, fields["file"][0] or "upload", fields["file"][1])
        self.files[file.id] = file
        return 200, file.describe()

    def _create(self, request: dict[str, Any]) -> tuple[int, Any]:
        file = self.files.get(request.get("input_file_id", ""))
        if file is None or file.purpose != "batch":
            return 400, _error("The input file does not exist or was not uploaded with purpose 'batch'.", "invalid")
        if request.get("endpoint") != "/v1/chat/completions" or request.get("completion_window") != "24h":
            return 400, _error("Only /v1/chat/completions with a 24h completion window is served.", "invalid")
        number = len(self.batches) + 1
        plan = self.plans.get(number, self.plan)
        batch = FakeBatch(f"batch_{number:04d}", file.id, request["endpoint"], plan, self.finish)
        batch.counts["total"] = len(_lines(file.data))
        self.batches[batch.id] = batch
        return 200, batch.describe()

    def _advance(self, batch: FakeBatch, run: Executor) -> None:
        batch.retrieved += 1
        if batch.status in TERMINAL:
            return
        batch.step = min(batch.step + 1, len(batch.plan) - 1)
        if batch.status in TERMINAL:
            self._run(batch, run)

    def _run(self, batch: FakeBatch, run: Executor) -> None:
        lines = _lines(self.files[batch.input_file_id].data)
        if batch.status == "failed":
            batch.errors = [{"code": "invalid_request", "message": "Line 1: the model field is missing.", "line": 1}]
            return
        done = (
            len(lines)
            if batch.status == "completed"
            else (batch.finish if batch.finish is not None else len(lines) // 2)
        )
        output, errors = [], []
        for number, line in enumerate(lines):
            item = {"id": f"batch_req_{batch.id}_{number}", "custom_id": line["custom_id"]}
            if number >= done:
                code = "batch_expired" if batch.status == "expired" else "batch_cancelled"
                message = "This request could not be executed before the completion window expired."
                errors.append(item | {"response": None, "error": {"code": code, "message": message}})
                continue
            status, payload = run(line["body"], batch.id)
            item |= {"response": {"status_code": status, "request_id": f"req_{number}", "body": payload}, "error": None}
            (output if status == 200 else errors).append(item)
        batch.counts.update(completed=len(output), failed=len(errors))
        if output:
            batch.output_file_id = self._store(f"{batch.id}_output.jsonl", output)
        if errors:
            batch.error_file_id = self._store(f"{batch.id}_error.jsonl", errors)

    def _store(self, name: str, rows: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        file = FakeFile(f"file-{len(self.files) + 1:04d}", "batch_output", name, data)
        self.files[file.id] = file
        return file.id


def _lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
