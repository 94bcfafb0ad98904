"""The record contract: building, validating, reading and writing dataset lines."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from emgen.errors import InvalidRecordError
from emgen.resources import schema_errors

Record = dict[str, Any]


def turn_order_errors(messages: list[dict[str, Any]]) -> list[str]:
    """Optional system turn first, then user/assistant alternating, ending with assistant."""
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if roles and roles[0] == "system":
        roles = roles[1:]
    if not roles:
        return ["messages: no user or assistant turn"]
    errors = []
    for index, role in enumerate(roles):
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            errors.append(f"messages: turn {index + 1} after any system turn is {role!r}, expected {expected!r}")
            break
    if roles[-1] != "assistant":
        errors.append("messages: the last turn must be the assistant's")
    return errors


def record_errors(record: Any) -> list[str]:
    """Everything that makes ``record`` break the contract; empty when it is valid."""
    errors = schema_errors("record", record)
    if not errors:
        errors = turn_order_errors(record["messages"])
    return errors


def dumps(record: Record) -> str:
    """The canonical one-line JSON form, so equal records give equal bytes."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line; a bad line names file and line."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRecordError(f"{path}: no such file") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise InvalidRecordError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRecordError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            except UnicodeDecodeError:
                raise InvalidRecordError(f"{path}:{number}: not UTF-8 text") from None


def read_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Records of a JSONL file, each validated; the first bad line raises with file:line."""
    for number, record in iter_jsonl(path):
        errors = record_errors(record)
        if errors:
            raise InvalidRecordError(f"{path}:{number}: {errors[0]}")
        yield record


class AtomicFile:
    """A text file written to a temporary sibling and renamed into place on success.

    A failure (full disk, exception, Ctrl-C) leaves any previous file untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None
        self._tmp: str | None = None

    def __enter__(self) -> IO[str]:
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        return self._handle

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._handle is not None and self._tmp is not None
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
        except BaseException:
            os.unlink(self._tmp)
            raise
        if exc_type is None:
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)


def _umask() -> int:
    """The process umask (read by setting and restoring it), so written files get normal modes."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    """Stream ``rows`` to ``path`` atomically; returns the number of lines written."""
    count = 0
    with AtomicFile(path) as handle:
        for row in rows:
            handle.write(dumps(row))
            handle.write("\n")
            count += 1
    return count


def write_records(path: str | os.PathLike[str], records: Iterable[Record]) -> int:
    """Validate and stream records to ``path`` atomically; returns the number written."""

    def checked() -> Iterator[Record]:
        for index, record in enumerate(records, start=1):
            errors = record_errors(record)
            if errors:
                raise InvalidRecordError(f"record {index} for {path}: {errors[0]}")
            yield record

    return write_jsonl(path, checked())
