"""semantic-router route configs, JSON or YAML: what ``SemanticRouter.to_json`` / ``to_yaml``
write (``{"encoder_type": ..., "encoder_name": ..., "routes": [...]}``) or a bare list of routes,
each with a ``name`` and its ``utterances``. Only names and utterances matter here: the
encoder, thresholds and function schemas belong to semantic-router."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_il.data.base import DataError, Parsed, check_label, is_fallback, line_of, load_json, load_yaml, read_text


def routes_of(doc: Any) -> list[Any] | None:
    """The routes of a config, or None when ``doc`` is not shaped like one."""
    routes = doc.get("routes") if isinstance(doc, dict) else doc
    if not isinstance(routes, list) or not routes:
        return None
    if all(isinstance(r, dict) and "name" in r and "utterances" in r for r in routes):
        return routes
    return None


def load(path: Path) -> Any:
    text = read_text(path)
    return load_json(text, str(path)) if path.suffix.lower() == ".json" else load_yaml(text, str(path))


def read(path: Path, *, max_chars: int | None = None) -> Parsed:
    parsed = Parsed(str(path), "semantic-router")
    doc = load(path)
    routes = routes_of(doc)
    if routes is None:
        raise DataError(f"{path}: expected routes (objects with name and utterances), alone or under 'routes'")
    for i, route in enumerate(routes, start=1):
        where = f"{path}{line_of(route) or f' route {i}'}"
        label = check_label(route["name"], where)
        utterances = route["utterances"]
        if not isinstance(utterances, list):
            raise DataError(f"{where}: utterances of {label!r} must be a list of texts")
        if not utterances:
            raise DataError(f"{where}: route {label!r} has no utterances")
        for j, text in enumerate(utterances, start=1):
            parsed.add(text, label, is_fallback(label), f"{where} utterance {j}", max_chars)
    return parsed
