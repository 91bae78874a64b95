"""Writing stored examples out: JSONL (every field: what ``import`` replays), CSV (text, label,
task, source: what ``learn`` reads back), Rasa NLU YAML and a semantic-router route config, so
that what was taught here can go back to those frameworks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from agent_il.data.base import DataError, format_of

EXPORT_FORMATS = ("jsonl", "csv", "rasa", "semantic-router")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".yml": "rasa", ".yaml": "rasa"}
_EXTENSIONS[".json"] = "semantic-router"
# The fields of one exported example, in the order JSONL writes them.
FIELDS = ("id", "text", "label", "task", "task_id", "row", "held_out", "source", "time", "weight")
CSV_FIELDS = ("text", "label", "task", "source", "held_out")


def export_format(path: Path, fmt: str | None) -> str:
    return format_of(path, fmt, EXPORT_FORMATS, _EXTENSIONS, "export ")


def render(fmt: str, rows: list[dict[str, Any]], model: str | None = None) -> bytes:
    """The bytes of an export of ``rows`` (dicts with :data:`FIELDS`, in learn order)."""
    if fmt == "jsonl":
        return "".join(json.dumps({k: r.get(k) for k in FIELDS}, ensure_ascii=False) + "\n" for r in rows).encode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        writer.writerows([r[k] for k in CSV_FIELDS] for r in rows)
        return out.getvalue().encode()
    by_label: dict[str, list[str]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(" ".join(r["text"].split()))  # one line each
    if fmt == "rasa":
        return _rasa(by_label)
    if fmt == "semantic-router":
        routes = [
            {"name": name, "utterances": texts, "description": None, "function_schemas": None, "llm": None}
            for name, texts in by_label.items()
        ]
        config = {"encoder_type": "huggingface", "encoder_name": model, "routes": routes}
        return (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode()
    raise DataError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")


class _Block(str):
    """A string YAML writes as a ``|`` block (Rasa's examples)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", str(s), style="|"))


def _rasa(by_label: dict[str, list[str]]) -> bytes:
    nlu = [{"intent": name, "examples": _Block("".join(f"- {t}\n" for t in texts))} for name, texts in by_label.items()]
    text = yaml.dump({"version": "3.1", "nlu": nlu}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6)
    return text.encode()
