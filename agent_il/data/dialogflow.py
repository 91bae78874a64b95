"""Dialogflow ES agent exports (the zip of Export and Import, or its unpacked directory).

``intents/NAME.json`` describes an intent (its ``name``, ``fallbackIntent``); its training
phrases are in ``intents/NAME_usersays_LANG.json``, a list of ``{"data": [{"text": ...}, ...]}``
whose parts (plain text and annotated entity values alike) concatenate to the phrase. An agent
with several languages needs ``language``. The fallback intent's phrases (Dialogflow's negative
examples) are out-of-scope rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent_il.data.base import DataError, Parsed, Tree, check_label, is_fallback, pick

USERSAYS = re.compile(r"^(?P<prefix>(?:.*/)?)intents/(?P<name>[^/]+)_usersays_(?P<lang>[^/]+)\.json$")
INTENT = re.compile(r"^(?P<prefix>(?:.*/)?)intents/(?P<name>[^/]+)\.json$")


def looks_like(names: list[str]) -> bool:
    return any(INTENT.match(n) for n in names)


def read(path: Path, *, language: str | None = None, max_chars: int | None = None) -> Parsed:
    parsed = Parsed(str(path), "dialogflow")
    with Tree(path) as tree:
        intents = {m["name"]: n for n in tree.names if (m := INTENT.match(n)) and not USERSAYS.match(n)}
        says = [(m["name"], m["lang"], n) for n in tree.names if (m := USERSAYS.match(n))]
        if not intents and not says:
            raise DataError(f"{path}: no intents/NAME.json files; not a Dialogflow ES agent export")
        languages = sorted({lang for _, lang, _ in says})
        if not languages:
            raise DataError(f"{path}: no training phrases (intents/NAME_usersays_LANG.json) in this export")
        lang = pick(languages, language, "language", "--language", str(path))
        parsed.info["language"] = lang
        phrases = {name: n for name, lg, n in says if lg == lang}
        for name in sorted(set(intents) | set(phrases)):
            meta = tree.json(intents[name]) if name in intents else {}
            where = tree.where(intents.get(name) or phrases[name])
            if not isinstance(meta, dict):
                raise DataError(f"{where}: expected an intent object")
            label = check_label(meta.get("name", name), where)
            fallback = meta.get("fallbackIntent") is True or is_fallback(label)
            if name not in phrases:
                if fallback:  # Dialogflow's fallback usually has no phrases: nothing to calibrate on
                    parsed.skipped["fallback intents without phrases"] += 1
                    continue
                if not any(n == name for n, _, _ in says):  # triggered by events only (a welcome, say)
                    parsed.skipped["intents without training phrases"] += 1
                    continue
                raise DataError(f"{where}: intent {label!r} has no training phrases in language {lang!r}")
            _read_phrases(tree, phrases[name], label, fallback, parsed, max_chars)
    return parsed


def _is_part(part: Any) -> bool:
    return isinstance(part, dict) and isinstance(part.get("text"), str)


def _read_phrases(tree: Tree, name: str, label: str, fallback: bool, parsed: Parsed, max_chars: int | None) -> None:
    where = tree.where(name)
    items: Any = tree.json(name)
    if not isinstance(items, list):
        raise DataError(f"{where}: expected a list of training phrases")
    if not items:
        raise DataError(f"{where}: intent {label!r} has no training phrases")
    for i, item in enumerate(items, start=1):
        parts = item.get("data") if isinstance(item, dict) else None
        if not isinstance(parts, list) or not all(_is_part(p) for p in parts):
            raise DataError(f'{where} item {i}: expected {{"data": [{{"text": ...}}, ...]}}')
        parsed.add("".join(p["text"] for p in parts), label, fallback, f"{where} item {i}", max_chars)
