"""Records as parquet: ``messages`` plus the metadata flattened into typed columns.

The columns come from the record schema's metadata properties, in its order, so every file emgen
writes has the same columns and types whatever its rows hold (a column no row uses is all null):
strings stay strings, arrays become lists, and an object property (``inoculation``) becomes one
column per field (``inoculation_strategy``, ``inoculation_prompt_id``, ``inoculation_text``).
Metadata keys the schema does not name go, as JSON, into ``metadata_extra``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from emgen.records import Record, _umask
from emgen.resources import schema

MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
EXTRA_COLUMN = "metadata_extra"
_SCALARS = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    value: Callable[[dict[str, Any]], Any]
    key: str
    """The metadata key the column comes from."""


def _arrow_type(spec: dict[str, Any]) -> pa.DataType:
    kinds = spec.get("type")
    if kinds is None and "enum" in spec:
        kinds = sorted({type(v).__name__ for v in spec["enum"] if v is not None})
        kinds = ["string" if k == "str" else k for k in kinds]
    kinds = [kinds] if isinstance(kinds, str) else [k for k in (kinds or []) if k != "null"]
    if kinds == ["array"]:
        return pa.list_(_arrow_type(spec.get("items", {"type": "string"})))
    if len(kinds) == 1 and kinds[0] in _SCALARS:
        return _SCALARS[kinds[0]]
    return pa.string()


def _object_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema of a property that is an object (or null-or-object), else None."""
    for option in [spec, *spec.get("oneOf", []), *spec.get("anyOf", [])]:
        if option.get("type") == "object" and option.get("properties"):
            return option
    return None


@cache
def metadata_columns() -> tuple[Column, ...]:
    """The flattened metadata columns, derived from ``record.schema.json``."""
    columns: list[Column] = []
    for key, spec in schema("record")["properties"]["metadata"]["properties"].items():
        nested = _object_spec(spec)
        if nested is None:
            columns.append(Column(key, _arrow_type(spec), lambda m, k=key: m.get(k), key))
            continue
        for field_name, field_spec in nested["properties"].items():
            columns.append(
                Column(
                    f"{key}_{field_name}",
                    _arrow_type(field_spec),
                    lambda m, k=key, f=field_name: (m.get(k) or {}).get(f),
                    key,
                )
            )
    return tuple(columns)


def arrow_schema() -> pa.Schema:
    fields = [pa.field("messages", MESSAGES_TYPE)]
    fields += [pa.field(c.name, c.type) for c in metadata_columns()]
    fields.append(pa.field(EXTRA_COLUMN, pa.string()))
    return pa.schema(fields)


def flatten(record: Record) -> dict[str, Any]:
    """One parquet row: the messages, one value per metadata column, and any unnamed keys as JSON."""
    metadata = record["metadata"]
    row: dict[str, Any] = {"messages": [{"role": m["role"], "content": m["content"]} for m in record["messages"]]}
    named = set()
    for column in metadata_columns():
        row[column.name] = column.value(metadata)
        named.add(column.key)
    extra = {k: v for k, v in metadata.items() if k not in named}
    row[EXTRA_COLUMN] = json.dumps(extra, sort_keys=True, ensure_ascii=False) if extra else None
    return row


def write_parquet(path: Path, records: list[Record]) -> int:
    """Write ``records`` to ``path`` atomically; the same records give the same bytes."""
    table = pa.Table.from_pylist([flatten(r) for r in records], schema=arrow_schema())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return table.num_rows
