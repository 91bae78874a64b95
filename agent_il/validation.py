"""Checks on everything a caller hands in, done before any state is touched."""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent_il.errors import InvalidInputError, ModelMismatchError

MAX_LABEL_LENGTH = 100
MAX_TASK_NAME_LENGTH = 100
MAX_TEXT_CHARS = 1000  # longest text learn accepts, and evidence is cut to (the tools' default)
MAX_TEXT_CHARS_ENV = "AGENT_IL_MAX_TEXT_CHARS"
MAX_TEXT_CHARS_LIMIT = 1_000_000  # the most AGENT_IL_MAX_TEXT_CHARS may raise it to
MAX_WAIT_SECONDS = 86_400.0  # a day: the longest --wait / AGENT_IL_WAIT
MAX_SCORE = 1e6  # |threshold|: far beyond any in-scope score (they are logits, energies, distances)
MAX_MEMORY = 1_000_000  # exemplars per class, or in all
MAX_AUTO_SNAPSHOTS = 10_000
MAX_HOLDOUT = 0.5  # the largest --holdout: at most half of each class is kept aside

_SHORT = reprlib.Repr()
_SHORT.maxstring = 40
_SHORT.maxother = 40


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInputError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)


def texts(value: Any, what: str = "texts", max_chars: int | None = None) -> list[str]:
    """Non-empty strings; with ``max_chars`` (``learn``: :func:`max_text_chars`) none longer."""
    items = _as_list(value, what)
    if not items:
        raise InvalidInputError(f"{what} is empty")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidInputError(f"{what}[{i}] is a {type(t).__name__}, not a string")
        if not t.strip():
            raise InvalidInputError(f"{what}[{i}] is empty or whitespace")
        if max_chars is not None and (why := text_too_long(t, max_chars)):
            raise InvalidInputError(f"{what}[{i}] {why}")
    return items


def labels(value: Any, n: int, allow_unknown: bool = False) -> list[str]:
    """Checked labels. ``unknown`` is what predict answers for out-of-scope input, so it cannot
    be learned as an intent (``allow_unknown`` is for marking out-of-scope rows to calibrate on)."""
    from agent_il.results import UNKNOWN

    items = _as_list(value, "labels")
    if len(items) != n:
        raise InvalidInputError(f"got {n} examples but {len(items)} labels")
    out = []
    for i, label in enumerate(items):
        if not isinstance(label, str):
            raise InvalidInputError(f"labels[{i}] is a {type(label).__name__}, not a string")
        label = label.strip()
        if not label:
            raise InvalidInputError(f"labels[{i}] is empty or whitespace")
        if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
            raise InvalidInputError(f"labels[{i}] must be printable and at most {MAX_LABEL_LENGTH} characters")
        if label.casefold() == UNKNOWN and not allow_unknown:
            raise InvalidInputError(
                f"labels[{i}] is {label!r}, the answer kept for inputs that fit no intent; give the intent another name"
            )
        out.append(label)
    return out


def vectors(value: Any, dim: int | None) -> np.ndarray:
    try:
        x = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"vectors must be a 2-D array of numbers: {exc}") from exc
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InvalidInputError(f"vectors must be a non-empty 2-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInputError("vectors contain NaN or infinity")
    if dim is not None and x.shape[1] != dim:
        raise ModelMismatchError(f"vectors have dimension {x.shape[1]}; this workspace holds dimension {dim}")
    return x


def task_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("task must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_TASK_NAME_LENGTH or not value.isprintable():
        raise InvalidInputError(f"task must be printable and at most {MAX_TASK_NAME_LENGTH} characters")
    return value


def _shown(value: Any) -> str:
    """The rejected value as a message quotes it: short, whatever the caller sent."""
    return _SHORT.repr(value)


def _parsed(value: Any, what: str, kind: type, text: bool) -> Any:
    """``value`` as a number of ``kind``: a number, or with ``text`` the text of one (the CLI reads
    integer options as text, so that ``nan`` or ``1e999`` reach this check, not Click's usage error;
    an API caller's ``"3"`` stays an error)."""
    if text and isinstance(value, str):
        raw = value.strip()
        try:
            return int(raw) if kind is int else float(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise InvalidInputError(f"{what} must be {noun}, got {_shown(value)}") from None
    if isinstance(value, np.integer | np.floating) and not isinstance(value, bool):
        return value.item()
    return value


def integer(value: Any, what: str, minimum: int = 1, maximum: int | None = None, text: bool = False) -> int:
    """An integer in [``minimum``, ``maximum``] (an int; with ``text``, also the text of one)."""
    value = _parsed(value, what, int, text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an integer, got {_shown(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        if maximum is not None:
            bound = f"from {minimum} to {maximum}"
        else:
            bound = {1: "a positive integer", 0: "a non-negative integer"}.get(
                minimum, f"an integer of at least {minimum}"
            )
            raise InvalidInputError(f"{what} must be {bound}, got {_shown(value)}")
        raise InvalidInputError(f"{what} must be an integer {bound}, got {_shown(value)}")
    return value


def real(
    value: Any,
    what: str,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
    text: bool = False,
) -> float:
    """A finite number in the interval the bounds give (with ``text``, also its text). NaN and
    infinity are refused whatever the bounds: NaN makes every comparison false."""
    given = value
    value = _parsed(value, what, float, text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{what} must be a number, got {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        value = float("inf")
    low_ok = minimum is None or (value > minimum if open_min else value >= minimum)
    high_ok = maximum is None or (value < maximum if open_max else value <= maximum)
    if not math.isfinite(value) or not (low_ok and high_ok):
        if minimum is None and maximum is None:
            raise InvalidInputError(f"{what} must be a finite number, got {_shown(given)}")
        lo = "" if minimum is None else ("(" if open_min else "[") + f"{minimum:g}"
        hi = "" if maximum is None else f"{maximum:g}" + (")" if open_max else "]")
        if minimum is None:
            interval = f"at most {maximum:g}" if not open_max else f"below {maximum:g}"
        elif maximum is None:
            interval = f"at least {minimum:g}" if not open_min else f"above {minimum:g}"
        else:
            interval = f"in {lo}, {hi}"
        raise InvalidInputError(f"{what} must be a finite number {interval}, got {_shown(given)}")
    return value


def positive_int(value: Any, what: str, maximum: int | None = None, text: bool = False) -> int:
    return integer(value, what, 1, maximum, text)


def non_negative_int(value: Any, what: str, maximum: int | None = None, text: bool = False) -> int:
    return integer(value, what, 0, maximum, text)


def holdout(value: Any, what: str = "holdout") -> float:
    """The share of each class held out as a learn's test slice: 0 to :data:`MAX_HOLDOUT` (a larger
    slice would leave a class one or two examples to learn from)."""
    return real(value, what, 0.0, MAX_HOLDOUT)


def fraction(value: Any, what: str) -> float:
    return real(value, what, 0.0, 1.0, open_max=True)


def number(value: Any, what: str) -> float:
    """A real number, finite (NaN would make every comparison false)."""
    return real(value, what)


def keep_rate(value: Any, what: str = "keep") -> float:
    return real(value, what, 0.0, 1.0, open_min=True)


def threshold(value: Any, what: str = "threshold") -> float:
    """An in-scope score threshold: finite, within +-:data:`MAX_SCORE`."""
    return real(value, what, -MAX_SCORE, MAX_SCORE)


def wait_seconds(value: Any, what: str = "wait") -> float:
    """How long to wait for a workspace another process has open: 0 to a day (a negative
    timeout would make the lock wait forever)."""
    return real(value, f"{what} (seconds; AGENT_IL_WAIT)", 0.0, MAX_WAIT_SECONDS)


def distance(value: Any, what: str = "distance") -> float:
    """A cosine distance threshold: above 0, at most 2 (the largest cosine distance)."""
    return real(value, what, 0.0, 2.0, open_min=True)


def max_text_chars() -> int:
    """The longest text ``learn`` accepts: $AGENT_IL_MAX_TEXT_CHARS, else :data:`MAX_TEXT_CHARS`."""
    raw = os.environ.get(MAX_TEXT_CHARS_ENV, "").strip()
    if not raw:
        return MAX_TEXT_CHARS
    return integer(raw, MAX_TEXT_CHARS_ENV, 1, MAX_TEXT_CHARS_LIMIT, text=True)


def text_too_long(text: str, limit: int) -> str | None:
    """Why ``text`` cannot be learned under ``limit``, or None."""
    if len(text) <= limit:
        return None
    return f"has {len(text):,} characters; the longest text to learn is {limit:,} (raise it with {MAX_TEXT_CHARS_ENV})"


def cut(text: str | None, limit: int | None = None) -> str | None:
    """``text`` cut to ``limit`` characters (default :func:`max_text_chars`), an ellipsis marking the cut."""
    if text is None:
        return None
    limit = max_text_chars() if limit is None else limit
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"
