"""One-file chat exports: TRL SFT, ShareGPT, Alpaca, prompt/completion (and the rows OpenAI takes).

Each format keeps the whole conversation a record holds, system turn included, so an inoculated
arm keeps its inoculation; metadata stays behind (it is never training text).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from emgen.dataset_folder import DatasetFolder
from emgen.export.base import ExportError, ExportOptions, ExportResult, Format, register
from emgen.records import Record, write_jsonl

Rows = list[dict[str, Any]]
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def turns(record: Record) -> list[dict[str, str]]:
    """The record's messages as plain ``{"role", "content"}`` dicts (nothing else)."""
    return [{"role": m["role"], "content": m["content"]} for m in record["messages"]]


def to_messages(records: list[Record]) -> Rows:
    return [{"messages": turns(r)} for r in records]


def to_sharegpt(records: list[Record]) -> Rows:
    return [
        {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in turns(r)]}
        for r in records
    ]


def to_prompt_completion(records: list[Record]) -> Rows:
    """TRL's conversational prompt-completion type: the last assistant turn is the completion."""
    return [{"prompt": turns(r)[:-1], "completion": turns(r)[-1:]} for r in records]


def to_alpaca(records: list[Record]) -> Rows:
    """``instruction``/``input``/``output``, plus ``system`` on every row when any row has a system turn."""
    with_system = any(r["messages"][0]["role"] == "system" for r in records)
    rows = []
    for record in records:
        messages = turns(record)
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        exchange = messages[1:] if messages[0]["role"] == "system" else messages
        if len(exchange) != 2:
            raise ExportError(
                f"alpaca holds one question and one answer per row; {record['metadata']['id']} has {len(exchange)} turns"
            )
        row = {"instruction": exchange[0]["content"], "input": "", "output": exchange[1]["content"]}
        if with_system:
            row["system"] = system
        rows.append(row)
    return rows


def write_rows(
    folder: DatasetFolder, out: Path, options: ExportOptions, name: str, convert: Callable[[list[Record]], Rows]
) -> ExportResult:
    split = options.split or "train"
    rows = convert(folder.records(split))
    count = write_jsonl(out, rows)
    return ExportResult(name, out, count, {"split": split})


def jsonl_format(name: str, description: str, convert: Callable[[list[Record]], Rows]) -> Format:
    def write(folder: DatasetFolder, out: Path, options: ExportOptions) -> ExportResult:
        return write_rows(folder, out, options, name, convert)

    return register(Format(name, description, write))


jsonl_format("trl-sft", "TRL SFTTrainer, conversational: {messages: [{role, content}]}", to_messages)
jsonl_format("sharegpt", "ShareGPT (axolotl, LLaMA-Factory): {conversations: [{from, value}]}", to_sharegpt)
jsonl_format("alpaca", "Alpaca: {instruction, input, output} (+ system when any row has one)", to_alpaca)
jsonl_format(
    "prompt-completion",
    "TRL conversational prompt-completion: {prompt: [turns], completion: [assistant turn]}",
    to_prompt_completion,
)
