"""Rasa 3.x NLU training data (``nlu.yml``), a file or a directory of them.

``nlu:`` holds entries ``- intent: NAME`` with ``examples:`` (a ``|`` block of ``- text`` bullets,
or a list of ``text:`` items with metadata); inline entity annotations ``[text](entity)``,
``[text](entity:value)`` and ``[text]{"entity": ...}`` are reduced to their text, since the
learner classifies intents only. ``synonym``, ``regex`` and ``lookup`` entries (entity helpers)
are skipped and counted. Retrieval intents (``faq/ask_x``) are labels as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent_il.data.base import DataError, Parsed, check_label, is_fallback, line_of, load_yaml, read_text

ENTITY = re.compile(r"\[(?P<text>[^\]\n]*)\](?:\([^)\n]*\)|\{[^}\n]*\})+")
SKIPPED_KINDS = ("synonym", "regex", "lookup")
SUFFIXES = (".yml", ".yaml")


def strip_entities(text: str) -> str:
    """``book [tomorrow](date)`` -> ``book tomorrow``: the annotation's text, without it."""
    return ENTITY.sub(lambda m: m.group("text"), text)


def is_rasa(doc: Any) -> bool:
    return isinstance(doc, dict) and "nlu" in doc


def read(path: Path, *, max_chars: int | None = None) -> Parsed:
    """A Rasa NLU file, or every ``.yml``/``.yaml`` file under a directory (those without an
    ``nlu:`` section, stories or domain files, are skipped and counted)."""
    parsed = Parsed(str(path), "rasa")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise DataError(f"{path}: no .yml or .yaml files in this directory")
        docs = [(f, load_yaml(read_text(f), str(f))) for f in files]  # every file parses before any is used
        used = [(f, d) for f, d in docs if is_rasa(d)]
        if not used:
            raise DataError(f"{path}: none of its YAML files has an nlu: section")
        parsed.skipped["files without nlu"] = len(docs) - len(used)
        parsed.info["files"] = [str(f.relative_to(path)) for f, _ in used]
    else:
        doc = load_yaml(read_text(path), str(path))
        if not is_rasa(doc):
            raise DataError(f"{path}: has no nlu: section; not Rasa NLU training data")
        used = [(path, doc)]
    for f, doc in used:
        _read_nlu(f, doc, parsed, max_chars)
    if not parsed.rows:
        raise DataError(f"{path}: holds no intent examples")
    return parsed


def _read_nlu(path: Path, doc: dict[str, Any], parsed: Parsed, max_chars: int | None) -> None:
    entries = doc["nlu"]
    if not isinstance(entries, list):
        raise DataError(f"{path}{line_of(doc, 'nlu')}: nlu: must be a list of entries")
    for entry in entries:
        if not isinstance(entry, dict):
            raise DataError(f"{path}{line_of(doc, 'nlu')}: every nlu entry must be a mapping like '- intent: NAME'")
        where = f"{path}{line_of(entry)}"
        kind = next((k for k in ("intent", *SKIPPED_KINDS) if k in entry), None)
        if kind is None:
            raise DataError(f"{where}: an nlu entry needs one of intent, synonym, regex, lookup")
        if kind != "intent":
            parsed.skipped[kind] += 1
            continue
        label = check_label(entry["intent"], where)
        fallback = is_fallback(label)
        examples = list(_examples(path, entry, label))
        if not examples:
            raise DataError(f"{where}: intent {label!r} has no examples")
        for text, at in examples:
            parsed.add(strip_entities(text), label, fallback, at, max_chars)


def _examples(path: Path, entry: dict[str, Any], label: str) -> Any:
    """(text, where) of each example of an intent entry, in either of Rasa's two layouts."""
    value = entry.get("examples")
    first = entry.lines.get("examples", entry.line) if hasattr(entry, "lines") else 0
    if value is None:
        return
    if isinstance(value, str):  # `examples: |` then one `- text` per line, from the next line on
        for n, line in enumerate(value.split("\n"), start=first + 1):
            item = line.strip()
            if not item:
                continue
            if not item.startswith("-"):
                raise DataError(f"{path} line {n}: an example of {label!r} must start with '- '")
            yield item[1:].strip(), f"{path} line {n}"
    elif isinstance(value, list):  # `examples:` then `- text: ...` items, each with its metadata
        for item in value:
            text = item.get("text") if isinstance(item, dict) else item
            yield text, f"{path}{line_of(item) or f' line {first}'}"
    else:
        raise DataError(f"{path} line {first}: examples of {label!r} must be a '|' block of '- ' lines or a list")
