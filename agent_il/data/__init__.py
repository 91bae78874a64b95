"""Reading labelled (and unlabelled) text: tables (CSV/TSV with a header, JSONL, JSON) and the
formats intent data lives in (Rasa NLU YAML, Dialogflow ES and Amazon Lex V2 exports,
semantic-router route configs); writing it back out (:mod:`agent_il.data.writers`); and moving a
knowledge base between workspaces (:mod:`agent_il.data.transfer`).

``read`` picks the format from ``fmt`` or, where that is unambiguous, from the path (extension,
then the content of a YAML/JSON file or the paths in a zip/directory). Every problem is one
:class:`DataError` naming the file and, where there is one, the line, before anything is learned.
"""

from __future__ import annotations

from pathlib import Path

from agent_il.data import dialogflow, lex, rasa, semantic_router, tables
from agent_il.data.base import FALLBACK_NAMES, DataError, Dataset, Tree, format_of, load_json, load_yaml, read_text
from agent_il.data.tables import FORMATS, LABEL_COLUMNS, TEXT_COLUMNS, lines, splits
from agent_il.data.transfer import export_examples, learn_dataset, replay_export
from agent_il.data.writers import EXPORT_FORMATS

IMPORT_FORMATS = ("rasa", "dialogflow", "lex", "semantic-router")
ALL_FORMATS = (*FORMATS, *IMPORT_FORMATS)

__all__ = [
    "ALL_FORMATS",
    "EXPORT_FORMATS",
    "FALLBACK_NAMES",
    "FORMATS",
    "IMPORT_FORMATS",
    "LABEL_COLUMNS",
    "TEXT_COLUMNS",
    "DataError",
    "Dataset",
    "detect",
    "export_examples",
    "learn_dataset",
    "lines",
    "read",
    "replay_export",
    "splits",
]


def detect(path: str | Path, fmt: str | None = None) -> str:
    """The format of ``path``: ``fmt`` if given, else from what the path is (see the module)."""
    path = Path(path)
    if fmt is not None:
        return format_of(path, fmt, ALL_FORMATS, {})
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        with Tree(path) as tree:
            names = tree.names
        if lex.looks_like(names):
            return "lex"
        if dialogflow.looks_like(names):
            return "dialogflow"
        if path.is_dir() and any(n.lower().endswith(rasa.SUFFIXES) for n in names):
            return "rasa"
        raise DataError(
            f"{path}: neither intents/NAME.json (Dialogflow ES) nor BotLocales/ (Amazon Lex V2) "
            "inside; pass --format if it is one of them"
        )
    if suffix in rasa.SUFFIXES:
        doc = load_yaml(read_text(path), str(path))
        if rasa.is_rasa(doc):
            return "rasa"
        if semantic_router.routes_of(doc) is not None:
            return "semantic-router"
        raise DataError(
            f"{path}: neither Rasa NLU data (an nlu: section) nor semantic-router routes (name and utterances)"
        )
    if suffix == ".json":
        try:
            doc = load_json(read_text(path), str(path))
        except DataError:
            return "json"  # the table reader reports it, with the line
        return "semantic-router" if semantic_router.routes_of(doc) is not None else "json"
    return format_of(path, None, ALL_FORMATS, tables._EXTENSIONS)


def read(
    path: str | Path,
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    split: str | None = None,
    labelled: bool = True,
    max_chars: int | None = None,
    language: str | None = None,
    locale: str | None = None,
    keep_fallback: bool = False,
) -> Dataset:
    """Read texts (and labels, when ``labelled``) from ``path``; with ``max_chars`` (what ``learn``
    accepts), a longer text is refused naming its line. For the intent-framework formats,
    ``language`` (Dialogflow) or ``locale`` (Lex) picks one when the export has several, and
    fallback / out-of-scope intents become ``Dataset.fallback`` unless ``keep_fallback``."""
    path = Path(path)
    found = detect(path, fmt)
    _check_options(path, found, text_col=text_col, label_col=label_col, split=split, language=language, locale=locale)
    if found in FORMATS:
        if keep_fallback:
            raise DataError(f"{path}: --keep-fallback applies to {', '.join(IMPORT_FORMATS)} imports, not {found}")
        return tables.read(
            path, fmt=found, text_col=text_col, label_col=label_col, split=split, labelled=labelled, max_chars=max_chars
        )
    if found == "dialogflow":
        parsed = dialogflow.read(path, language=language, max_chars=max_chars)
    elif found == "lex":
        parsed = lex.read(path, locale=locale, max_chars=max_chars)
    elif found == "rasa":
        parsed = rasa.read(path, max_chars=max_chars)
    else:
        parsed = semantic_router.read(path, max_chars=max_chars)
    return parsed.dataset(keep_fallback, labelled)


def _check_options(path: Path, fmt: str, **given: str | None) -> None:
    """Every option must apply to the format: a flag silently ignored is a wrong result."""
    applies = {"text_col": FORMATS, "label_col": FORMATS, "split": FORMATS, "language": ("dialogflow",)}
    applies["locale"] = ("lex",)
    for name, value in given.items():
        if value is not None and fmt not in applies[name]:
            flag = "--" + name.replace("_", "-")
            raise DataError(f"{path}: {flag} applies to {', '.join(applies[name])} files, not {fmt}")
