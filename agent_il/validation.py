"""Checks on everything a caller hands in, done before any state is touched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agent_il.errors import InvalidInputError, ModelMismatchError

MAX_LABEL_LENGTH = 100
MAX_TASK_NAME_LENGTH = 100


def _as_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInputError(f"{what} must be a list, got {type(value).__name__}")
    return list(value)


def texts(value: Any, what: str = "texts") -> list[str]:
    items = _as_list(value, what)
    if not items:
        raise InvalidInputError(f"{what} is empty")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidInputError(f"{what}[{i}] is a {type(t).__name__}, not a string")
        if not t.strip():
            raise InvalidInputError(f"{what}[{i}] is empty or whitespace")
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


def positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer, got {value!r}")
    return value


def fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise InvalidInputError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def non_negative_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def number(value: Any, what: str) -> float:
    """A real number, finite (NaN would make every comparison false)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def keep_rate(value: Any, what: str = "keep") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
        raise InvalidInputError(f"{what} must be a number in (0, 1], got {value!r}")
    return float(value)
