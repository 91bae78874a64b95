"""Tables of labelled (and unlabelled) text: CSV/TSV with a header, JSONL, or JSON (a list of
objects, a CLINC-style list of [text, label] pairs, or an object of such lists per split).

Every problem is reported as one :class:`DataError` naming the file and, where there is one,
the line, before anything is learned.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from agent_il import validation
from agent_il.data.base import DataError, Dataset, format_of, read_text

FORMATS = ("csv", "tsv", "jsonl", "json")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
TEXT_COLUMNS = ("text", "utterance", "query", "sentence", "question")
LABEL_COLUMNS = ("label", "intent", "category", "class")


def _format(path: Path, fmt: str | None) -> str:
    return format_of(path, fmt, FORMATS, _EXTENSIONS)


_text = read_text


def lines(path: str | Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file: one text each (no header, no columns)."""
    return [line.removesuffix("\r") for line in _text(Path(path)).split("\n") if line.strip()]


def _pick(columns: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, path: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{path}: no {what} column {wanted!r}; columns are: {', '.join(columns)}")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for name in defaults:
        if name in lowered:
            return lowered[name]
    raise DataError(
        f"{path}: cannot find the {what} column (tried {', '.join(defaults)}); columns are: "
        f"{', '.join(columns)}; pass --{what}-col"
    )


def _rows_from_table(path: Path, text: str, delimiter: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    columns = [c for c in (reader.fieldnames or []) if c is not None]
    if not columns:
        raise DataError(f"{path}: no header line")
    rows: list[tuple[int, dict[str, Any]]] = []
    done = reader.line_num  # the lines read so far: a bad row starts on the next one
    try:
        for row in reader:
            rows.append((reader.line_num, row))
            done = reader.line_num
    except csv.Error as exc:
        raise DataError(f"{path} line {done + 1}: {exc}") from None
    return columns, rows


def _rows_from_json(
    path: Path, text: str, fmt: str, split: str | None
) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    if fmt == "jsonl":
        items = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {n}: not valid JSON: {exc.msg}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {exc.lineno}: not valid JSON: {exc.msg}") from None
        if isinstance(data, dict):
            splits = [k for k, v in data.items() if isinstance(v, list)]
            if split is None and len(splits) == 1:
                split = splits[0]
            if split is None:
                raise DataError(f"{path}: holds splits {', '.join(splits)}; choose one with --split")
            if split not in splits:
                raise DataError(f"{path}: no split {split!r}; splits are: {', '.join(splits)}")
            data = data[split]
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of objects or [text, label] pairs")
        items = [(i + 1, item) for i, item in enumerate(data)]  # JSON "line" = item number
    rows: list[tuple[int, dict[str, Any]]] = []
    columns: list[str] = []
    for n, item in items:
        if isinstance(item, list) and len(item) in (1, 2):
            item = dict(zip(("text", "label"), item))
        if not isinstance(item, dict):
            where = "line" if fmt == "jsonl" else "item"
            raise DataError(f"{path} {where} {n}: expected an object or a [text, label] pair")
        columns += [k for k in item if k not in columns]
        rows.append((n, item))
    return columns, rows


def splits(path: str | Path, fmt: str | None = None) -> list[str]:
    """Names of the splits in a JSON file holding an object of lists (else an empty list)."""
    path = Path(path)
    if _format(path, fmt) != "json":
        return []
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError:
        return []  # read() reports it, with the line
    return [k for k, v in data.items() if isinstance(v, list)] if isinstance(data, dict) else []


def read(
    path: str | Path,
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    split: str | None = None,
    labelled: bool = True,
    max_chars: int | None = None,
) -> Dataset:
    """Read texts (and labels, when ``labelled``) from ``path``; with ``max_chars`` (what ``learn``
    accepts), a longer text is refused naming its line."""
    path = Path(path)
    fmt = _format(path, fmt)
    text = _text(path)
    if fmt in ("csv", "tsv"):
        columns, rows = _rows_from_table(path, text, "," if fmt == "csv" else "\t")
    else:
        columns, rows = _rows_from_json(path, text, fmt, split)
    if not rows:
        raise DataError(f"{path}: holds no examples")
    where = "item" if fmt == "json" else "line"
    tcol = _pick(columns, text_col, TEXT_COLUMNS, "text", path)
    lcol = _pick(columns, label_col, LABEL_COLUMNS, "label", path) if labelled else None
    texts: list[str] = []
    labels: list[str] = []
    for n, row in rows:
        t = row.get(tcol)
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{path} {where} {n}: empty or missing text")
        if max_chars is not None and (why := validation.text_too_long(t, max_chars)):
            raise DataError(f"{path} {where} {n}: the text {why}")
        texts.append(t)
        if lcol is not None:
            y = row.get(lcol)
            if isinstance(y, int | float) and not isinstance(y, bool):
                y = str(y)
            if not isinstance(y, str) or not y.strip():
                raise DataError(f"{path} {where} {n}: empty or missing label")
            labels.append(y.strip())
    return Dataset(texts, labels if labelled else None, str(path), fmt)
