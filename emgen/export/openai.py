"""The OpenAI fine-tuning export: ``{"messages": [...]}`` lines checked as the service checks them.

The rules follow OpenAI's published format checks (cookbook "Chat fine-tuning data prep"): a
``messages`` list per line; each message has ``role`` and ``content`` and no other key we write;
roles are system, user or assistant; content is non-empty text; every example has an assistant
turn; the file has at least ten examples; and no example exceeds the model's training context,
counted with tiktoken the way OpenAI counts chat tokens. A file that breaks a rule is not written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgen import tokens
from emgen.dataset_folder import DatasetFolder
from emgen.export.base import ExportError, ExportOptions, ExportResult, Format, register
from emgen.export.chat import to_messages
from emgen.records import write_jsonl

ROLES = ("system", "user", "assistant")
MIN_EXAMPLES = 10


@dataclass
class OpenAIReport:
    model: tokens.ModelLimits
    rows: int = 0
    total_tokens: int = 0
    max_tokens: int = 0
    problems: list[str] = field(default_factory=list)


def message_problems(messages: Any) -> list[str]:
    """Format problems of one example's ``messages``; empty when the service would take it."""
    if not isinstance(messages, list) or not messages:
        return ["no messages list"]
    problems = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            problems.append(f"message {index} must have exactly the keys role and content")
            continue
        if message["role"] not in ROLES:
            problems.append(f"message {index} has role {message['role']!r}; allowed: {', '.join(ROLES)}")
        if not isinstance(message["content"], str) or not message["content"].strip():
            problems.append(f"message {index} has no text content")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message")
    return problems


def check_rows(
    rows: list[dict[str, Any]], ids: list[str], model: tokens.ModelLimits, counting: tokens.Counting
) -> OpenAIReport:
    """Check every example; token counts use the model's own tokenizer."""
    report = OpenAIReport(model)
    enc = tokens.encoding(model.encoding)
    for row, row_id in zip(rows, ids, strict=True):
        report.rows += 1
        if set(row) != {"messages"}:
            report.problems.append(f"{row_id}: the line must hold only 'messages'")
            continue
        problems = message_problems(row["messages"])
        if problems:
            report.problems.extend(f"{row_id}: {p}" for p in problems)
            continue
        count = tokens.count_chat_tokens(row["messages"], enc, counting)
        report.total_tokens += count
        report.max_tokens = max(report.max_tokens, count)
        if count > model.context_tokens:
            report.problems.append(f"{row_id}: {count} tokens, over {model.name}'s limit of {model.context_tokens}")
    if report.rows < MIN_EXAMPLES:
        report.problems.append(
            f"OpenAI fine-tuning needs at least {MIN_EXAMPLES} examples; this file would have {report.rows}"
        )
    return report


def write_openai(folder: DatasetFolder, out: Path, options: ExportOptions) -> ExportResult:
    table = tokens.load_models(options.models_file)
    model = table.get(options.model or tokens.DEFAULT_MODEL)
    split = options.split or "train"
    records = folder.records(split)
    rows = to_messages(records)
    report = check_rows(rows, [r["metadata"]["id"] for r in records], model, table.counting)
    if report.problems:
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise ExportError(f"not written: {folder.splits[split]}: {report.problems[0]}{more}")
    count = write_jsonl(out, rows)
    details = {
        "split": split,
        "model": model.name,
        "encoding": model.encoding,
        "context_tokens": model.context_tokens,
        "total_tokens": report.total_tokens,
        "max_tokens": report.max_tokens,
    }
    return ExportResult("openai", out, count, details)


register(
    Format(
        "openai",
        "OpenAI fine-tuning chat JSONL: {messages: [...]}, checked against the service's rules and token limits",
        write_openai,
        options=frozenset({"split", "model", "models_file"}),
    )
)
