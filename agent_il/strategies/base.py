"""The contract every learning rule keeps, so the learner, the workspace, rejection and the
benchmark treat them alike (``agent_il.strategies.checks.check_strategy`` tests it).
Configuration (constructor arguments, JSON) is kept apart from learned state (tensors,
safetensors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor


class Strategy(ABC):
    name: ClassVar[str]
    uses_replay: ClassVar[bool] = False
    # Rejection scores read ``raw_scores / score_temperature``: a scale that stays fixed across
    # learns (a head that refits its softmax temperature at every learn overrides it).
    score_temperature: ClassVar[float] = 1.0

    @abstractmethod
    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        """Learn one task in place. ``y`` indexes ``range(n_classes)``; ``n_classes`` only grows.
        ``replay`` is the exemplar memory of what came before (features, labels)."""

    @abstractmethod
    def raw_scores(self, x: Tensor) -> Tensor:
        """The head's scores (n x n_classes), computed once per predict: the confidence and the
        rejection score are both derived from them."""

    @property
    def temperature(self) -> float:
        """Confidence is ``softmax(raw_scores / temperature)``."""
        return 1.0

    def logits(self, x: Tensor) -> Tensor:
        """Scores whose softmax is the reported confidence."""
        return self.raw_scores(x) / self.temperature

    def leave_one_out(self, x: Tensor, y: Tensor, counts: Tensor) -> Tensor | None:
        """Raw scores of fitted rows ``x`` (labels ``y``; ``counts[i]``: how many examples row
        i's class had in the learn that fitted it) as if each had been left out of the fit.
        None for rules that cannot give them: calibration then uses held-out slices."""
        return None

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
