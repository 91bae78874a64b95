"""The contract every learning rule keeps, so the learner, the workspace and the benchmark treat
them alike. Configuration (JSON) is kept apart from learned state (tensors, safetensors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor


class Strategy(ABC):
    name: ClassVar[str]
    uses_replay: ClassVar[bool] = False

    @abstractmethod
    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        """Learn one task in place. ``y`` indexes ``range(n_classes)``; ``n_classes`` only grows.
        ``replay`` is the exemplar memory of what came before (features, labels)."""

    @abstractmethod
    def logits(self, x: Tensor) -> Tensor:
        """Scores (n x n_classes); their softmax is the reported confidence."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable: ``type(self)(**config())`` rebuilds it."""

    @abstractmethod
    def tensors(self) -> dict[str, Tensor]:
        """Learned state, saved as safetensors."""

    @abstractmethod
    def load_tensors(self, tensors: dict[str, Tensor]) -> None: ...

    @property
    @abstractmethod
    def n_classes(self) -> int: ...
