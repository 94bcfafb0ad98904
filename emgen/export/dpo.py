"""The TRL DPO export: ``prompt``/``chosen``/``rejected`` from a correct and a misaligned answer.

Pairs join on ``pair_id`` (same question): a folder's ``train.jsonl`` with its ``benign.jsonl``
(built with ``--benign``), or with another folder's ``train.jsonl`` (``--pair-with``). One side
must be correct and the other misaligned. The prompt is every turn of the misaligned row before
its answer, so any reframing of that row (an inoculation prompt, say) is part of the prompt.
"""

from __future__ import annotations

from pathlib import Path

from emgen.dataset_folder import DatasetFolder, open_folder
from emgen.export.base import CHOSEN, ExportError, ExportOptions, ExportResult, Format, register
from emgen.export.chat import turns
from emgen.records import Record, write_jsonl


def partners(folder: DatasetFolder, pair_with: Path | None) -> tuple[list[Record], dict[str, Record], str]:
    """The rows to pair, their partners by ``pair_id``, and where the partners came from."""
    rows = folder.records("train")
    if pair_with is not None:
        other = open_folder(pair_with)
        return rows, {r["metadata"]["pair_id"]: r for r in other.records("train")}, str(other.splits["train"])
    if "benign" not in folder.splits:
        raise ExportError(f"{folder.path} has no pairs for trl-dpo: build it with --benign, or give --pair-with FOLDER")
    return rows, {r["metadata"]["pair_id"]: r for r in folder.records("benign")}, str(folder.splits["benign"])


def make_pairs(rows: list[Record], others: dict[str, Record], chosen: str) -> tuple[list[dict], dict[str, int]]:
    """DPO rows and counts of rows left out (no partner, or both answers of the same kind)."""
    pairs: list[dict] = []
    skipped = {"no_partner": 0, "same_kind": 0}
    for row in rows:
        other = others.get(row["metadata"]["pair_id"])
        if other is None:
            skipped["no_partner"] += 1
            continue
        kinds = {r["metadata"]["variant"] == "correct": r for r in (row, other)}
        if len(kinds) != 2:
            skipped["same_kind"] += 1
            continue
        correct, misaligned = kinds[True], kinds[False]
        preferred, dispreferred = (correct, misaligned) if chosen == "correct" else (misaligned, correct)
        pairs.append(
            {
                "prompt": turns(misaligned)[:-1],
                "chosen": turns(preferred)[-1:],
                "rejected": turns(dispreferred)[-1:],
            }
        )
    return pairs, skipped


def write_dpo(folder: DatasetFolder, out: Path, options: ExportOptions) -> ExportResult:
    chosen = options.chosen or "correct"
    if chosen not in CHOSEN:
        raise ExportError(f"--chosen must be one of {', '.join(CHOSEN)}, not {chosen!r}")
    rows, others, source = partners(folder, options.pair_with)
    pairs, skipped = make_pairs(rows, others, chosen)
    if not pairs:
        raise ExportError(
            f"no pairs of a correct and a misaligned answer to the same question between "
            f"{folder.splits['train']} and {source} ({skipped['no_partner']} rows without a partner, "
            f"{skipped['same_kind']} with two answers of the same kind)"
        )
    count = write_jsonl(out, pairs)
    return ExportResult("trl-dpo", out, count, {"chosen": chosen, "partners": source, "skipped": skipped})


register(
    Format(
        "trl-dpo",
        "TRL DPOTrainer, conversational preference: {prompt, chosen, rejected} from paired rows",
        write_dpo,
        options=frozenset({"chosen", "pair_with"}),
    )
)
