"""What every reader shares: the error, the dataset it returns, reading a file (or a zip / a
directory of files) as UTF-8, YAML with line numbers, and the rows an intent-framework export
becomes before they are checked.

Every problem is one :class:`DataError` naming the file and, where there is one, the line,
raised before anything is learned.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent_il import validation
from agent_il.errors import InvalidInputError

# Labels of intents that catch what fits no intent (Rasa, Dialogflow, Lex, CLINC150): they are not
# learned as intents but become out-of-scope rows for calibration. Compared case-insensitively.
FALLBACK_NAMES = frozenset(
    {"out_of_scope", "nlu_fallback", "default fallback intent", "fallbackintent", "oos", "unknown"}
)


class DataError(InvalidInputError):
    """A labelled file cannot be used as it is."""


@dataclass(frozen=True)
class Dataset:
    """Texts and labels to learn. The importers of intent frameworks also say which rows are
    out of scope (``fallback``: learned by nobody, fitted into the rejection threshold), what
    they skipped (``skipped``: kind -> count) and what they chose (``info``: language, locale...)."""

    texts: list[str]
    labels: list[str] | None  # None when reading texts only
    source: str
    fmt: str | None = None
    fallback: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def is_fallback(label: str) -> bool:
    return label.strip().casefold() in FALLBACK_NAMES


@dataclass
class Parsed:
    """What an importer read, before the fallback rows are set apart: (text, label, fallback)."""

    source: str
    fmt: str
    rows: list[tuple[str, str, bool]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str, label: str, fallback: bool, where: str, max_chars: int | None) -> None:
        self.rows.append((check_text(text, where, max_chars), label, fallback))

    def dataset(self, keep_fallback: bool, labelled: bool) -> Dataset:
        """``keep_fallback``: learn the fallback intents like any other (under their own names)."""
        learned = [(t, y) for t, y, fb in self.rows if keep_fallback or not fb]
        fallback = [] if keep_fallback else [t for t, _, fb in self.rows if fb]
        if not learned:
            raise DataError(f"{self.source}: holds no examples of an intent to learn (only out-of-scope ones)")
        texts = [t for t, _ in learned]
        if not labelled:
            return Dataset(texts + fallback, None, self.source, self.fmt, [], dict(self.skipped), self.info)
        labels = [y for _, y in learned]
        return Dataset(texts, labels, self.source, self.fmt, fallback, dict(self.skipped), self.info)


def format_of(path: Path, fmt: str | None, choices: tuple[str, ...], extensions: dict[str, str], what: str = "") -> str:
    """``fmt`` when it is one of ``choices``, else the format ``path``'s extension names."""
    if fmt is not None:
        if fmt not in choices:
            raise DataError(f"unknown {what}format {fmt!r}; choose one of {', '.join(choices)}")
        return fmt
    found = extensions.get(path.suffix.lower())
    if found is None:
        raise DataError(f"{path}: cannot tell the format from the extension; pass --format ({', '.join(choices)})")
    return found


def check_text(text: Any, where: str, max_chars: int | None) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty or missing text")
    text = text.strip()
    if max_chars is not None and (why := validation.text_too_long(text, max_chars)):
        raise DataError(f"{where}: the text {why}")
    return text


def check_label(label: Any, where: str) -> str:
    """An intent name as the learner accepts it, or the reason naming ``where``."""
    if not isinstance(label, str) or not label.strip():
        raise DataError(f"{where}: empty or missing intent name")
    try:
        return validation.labels([label], 1, allow_unknown=True)[0]
    except InvalidInputError as exc:
        raise DataError(f"{where}: intent {label[:60]!r}: {str(exc).removeprefix('labels[0] ')}") from None


def decode(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{where} line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    if not text.strip():
        raise DataError(f"{where}: the file is empty")
    return text


def read_text(path: Path) -> str:
    """A whole UTF-8 file (a BOM is dropped); an empty one is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    return decode(raw, str(path))


def load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} line {exc.lineno}: not valid JSON: {exc.msg}") from None


class Node(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its line, and the line each of its values starts on."""

    line: int = 0
    lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, with mappings as :class:`Node` (line numbers for errors)."""


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data = Node()
    data.line, data.lines = node.start_mark.line + 1, {}
    yield data
    data.update(loader.construct_mapping(node))
    data.lines = {k.value: v.start_mark.line + 1 for k, v in node.value if isinstance(k, yaml.ScalarNode)}


_LineLoader.add_constructor("tag:yaml.org,2002:map", _mapping)


def load_yaml(text: str, where: str) -> Any:
    """Safe YAML (no Python objects), mappings as :class:`Node`; a syntax error names its line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise DataError(f"{where}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None


def line_of(obj: Any, key: Any = None) -> str:
    """`` line N`` of a YAML mapping (or of its value ``key``), empty for JSON."""
    if not isinstance(obj, Node):
        return ""
    n = obj.lines.get(key, obj.line) if key is not None else obj.line
    return f" line {n}" if n else ""


class Tree:
    """A zip archive or a directory, read as relative POSIX paths: agent exports come as either."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, str] = {}
        if path.is_dir():
            self._names = {p.relative_to(path).as_posix(): str(p) for p in sorted(path.rglob("*")) if p.is_file()}
        elif not path.exists():
            raise DataError(f"{path}: no such file or directory")
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{path}: not a zip archive ({exc})") from None
            infos = [i for i in self._zip.infolist() if not i.is_dir()]
            self._names = {i.filename.replace("\\", "/"): i.filename for i in infos}

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    @property
    def names(self) -> list[str]:
        return sorted(self._names)

    def where(self, name: str) -> str:
        return f"{self.path}:{name}" if self._zip is not None else str(self.path / name)

    def text(self, name: str) -> str:
        where = self.where(name)
        try:
            raw = self._zip.read(self._names[name]) if self._zip is not None else Path(self._names[name]).read_bytes()
        except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
            raise DataError(f"{where}: cannot read: {exc}") from None
        return decode(raw, where)

    def json(self, name: str) -> Any:
        return load_json(self.text(name), self.where(name))


def pick(available: list[str], wanted: str | None, what: str, flag: str, where: str) -> str:
    """The language or locale to read: ``wanted`` if the export has it, else the only one."""
    if wanted is not None:
        if wanted not in available:
            raise DataError(f"{where}: no {what} {wanted!r}; it has: {', '.join(available)}")
        return wanted
    if len(available) > 1:
        raise DataError(f"{where}: holds {what}s {', '.join(available)}; choose one with {flag}")
    return available[0]
