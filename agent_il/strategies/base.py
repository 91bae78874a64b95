"""The contract every learning rule keeps, so the learner, the workspace, rejection and the
benchmark treat them alike (``agent_il.strategies.checks.check_strategy`` tests it).
Configuration (constructor arguments, JSON) is kept apart from learned state (tensors,
safetensors)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Revision:
    """An edit of what the head was fitted on, in rows: each row's old column and weight and its
    new ones (column -1 / weight 0: not in the head then). Old columns index the head before the
    edit, new ones after it. ``recent`` (x, y, weight): the newest learn as it is after the edit,
    which a head that fits its temperature per learn refits it on."""

    x: Tensor
    y_old: Tensor
    w_old: Tensor
    y_new: Tensor
    w_new: Tensor
    recent: tuple[Tensor, Tensor, Tensor]


class Strategy(ABC):
    name: ClassVar[str]
    uses_replay: ClassVar[bool] = False
    # Rejection scores read ``raw_scores / score_temperature``: a scale that stays fixed across
    # learns (a head that refits its softmax temperature at every learn overrides it).
    score_temperature: ClassVar[float] = 1.0
    # Whether :meth:`revise` gives exactly the head fitted without (or with the new labels of)
    # the edited examples; otherwise it is a remap and a short replay pass.
    exact_edits: ClassVar[bool] = False

    @abstractmethod
    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        """Learn one task in place. ``y`` indexes ``range(n_classes)``; ``n_classes`` only grows.
        ``replay`` is the exemplar memory of what came before (features, labels)."""

    @abstractmethod
    def raw_scores(self, x: Tensor) -> Tensor:
        """The head's scores (n x n_classes), computed once per predict: the confidence and the
        rejection score are both derived from them."""

    def recurring_scores(self, x: Tensor) -> Tensor:
        """:meth:`raw_scores` of rows scored again at every learn and edit (the held-out slices:
        immutable records), where a head may keep what does not change between learns."""
        return self.raw_scores(x)

    @property
    def temperature(self) -> float:
        """Confidence is ``softmax(raw_scores / temperature)``."""
        return 1.0

    def logits(self, x: Tensor) -> Tensor:
        """Scores whose softmax is the reported confidence."""
        return self.raw_scores(x) / self.temperature

    def leave_one_out(self, x: Tensor, y: Tensor, counts: Tensor, groups: Tensor | None = None) -> Tensor | None:
        """Raw scores of fitted rows ``x`` (labels ``y``; ``counts[i]``: how many examples row
        i's class had in the learn that fitted it) as if each had been left out of the fit;
        rows sharing a ``groups`` id as if left out together (a row of count 0 is one the fit
        has not seen: scored as if its group's fitted rows were left out). None for rules that
        cannot give them: calibration then uses held-out slices."""
        return None

    @abstractmethod
    def revise(self, order: list[int | None], change: Revision, replay: tuple[Tensor, Tensor] | None) -> None:
        """Apply an edit in place: output column j becomes old column ``order[j]`` (None: a new,
        empty one) and the rows of ``change`` move as it says. ``replay``: the exemplars after
        the edit (features, new columns), for rules that relearn from them."""

    def statistics(self) -> dict[str, Tensor]:
        """What the next fit or edit needs beyond :meth:`tensors` (kept for the newest
        generation only, and derived again from the stored examples for an older one)."""
        return {}

    def load_statistics(self, tensors: dict[str, Tensor]) -> None:  # noqa: B027 (optional: most keep none)
        """Load what :meth:`statistics` gave."""

    @property
    def has_statistics(self) -> bool:
        """Whether the head can be fitted or edited as it is (statistics loaded, or none needed)."""
        return True

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable: ``type(self)(**config())`` rebuilds it."""

    @abstractmethod
    def tensors(self) -> dict[str, Tensor]:
        """Learned state a predict needs, saved as safetensors with every generation."""

    @abstractmethod
    def load_tensors(self, tensors: dict[str, Tensor]) -> None: ...

    @property
    @abstractmethod
    def n_classes(self) -> int: ...
