"""What a workspace is created with: settings, never learned values (scikit-learn's constructor
arguments vs fitted state). Frozen: a setting changes only by making a new config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agent_il import validation
from agent_il.errors import InvalidInputError, ModelMismatchError

SELECTIONS = ("herding", "random")  # how a class's exemplars are chosen (agent_il.memory.selection)
SCORES = ("hybrid", "energy", "msp", "prototype", "mahalanobis")  # in-scope scores (agent_il.ood.scores)
DEFAULT_STRATEGY = "ridge"  # best of the benchmark (README, "How it learns")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")  # how the model runs (agent_il.encoding); "auto" picks one
DEFAULT_SCORE = "hybrid"
DEFAULT_KEEP = 0.95  # share of in-scope inputs the rejection threshold keeps
AUTO_SNAPSHOTS = 10


@dataclass(frozen=True)
class MemoryBudget:
    """Either ``per_class`` exemplars for every class, or ``total`` shared by all classes
    (each class then keeps ``total // n_classes``, shrinking as classes arrive)."""

    per_class: int | None = 20
    total: int | None = None
    selection: str = "herding"
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.per_class is None) == (self.total is None):
            raise InvalidInputError("set exactly one of memory per_class and total")
        if self.per_class is not None:
            validation.positive_int(self.per_class, "memory per_class", validation.MAX_MEMORY)
        if self.total is not None:
            validation.positive_int(self.total, "memory total", validation.MAX_MEMORY)
        if self.selection not in SELECTIONS:
            raise InvalidInputError(f"unknown selection {self.selection!r}; choose one of {SELECTIONS}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def quota(self, n_classes: int) -> int:
        if self.total is not None:
            return max(1, self.total // max(n_classes, 1))
        assert self.per_class is not None
        return self.per_class


@dataclass(frozen=True)
class RejectionSettings:
    """When ``predict`` answers ``unknown``: the in-scope score, the share of in-scope inputs to
    keep (every learn recalibrates the threshold to it), and how that share was set (``default``,
    ``set`` by the user, or ``fitted`` on labelled out-of-scope rows)."""

    score: str = DEFAULT_SCORE
    keep: float = DEFAULT_KEEP
    mode: str = "default"

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise InvalidInputError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
        # 0 is a stored outcome, not a request: a threshold above every calibration score keeps nothing
        if isinstance(self.keep, bool) or not isinstance(self.keep, int | float) or not 0.0 <= self.keep <= 1.0:
            raise InvalidInputError(f"the kept share must be in [0, 1], got {self.keep!r}")


@dataclass(frozen=True)
class WorkspaceConfig:
    model: str = DEFAULT_MODEL
    backend: str = "torch"
    strategy: str = DEFAULT_STRATEGY
    strategy_config: dict[str, Any] = field(default_factory=dict)
    memory: MemoryBudget = field(default_factory=MemoryBudget)
    auto_snapshots: int = AUTO_SNAPSHOTS  # automatic pre-learn snapshots kept (0: none)
    rejection: RejectionSettings = field(default_factory=RejectionSettings)

    def __post_init__(self) -> None:
        validation.non_negative_int(self.auto_snapshots, "auto_snapshots", validation.MAX_AUTO_SNAPSHOTS)
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")

    @classmethod
    def create(
        cls,
        model: str | None = None,
        backend: str | None = None,
        strategy: str | None = None,
        strategy_config: dict[str, Any] | None = None,
        memory_per_class: int | None = None,
        memory_total: int | None = None,
        selection: str | None = None,
        auto_snapshots: int | None = None,
    ) -> WorkspaceConfig:
        """A new workspace's settings from the options a user gave (None: the default)."""
        if memory_total is not None and memory_per_class is not None:
            raise InvalidInputError("give memory_per_class or memory_total, not both")
        budget = MemoryBudget(
            per_class=None if memory_total is not None else (20 if memory_per_class is None else memory_per_class),
            total=memory_total,
            selection=selection or "herding",
        )
        return cls(
            model=model or DEFAULT_MODEL,
            backend=backend or "torch",
            strategy=strategy or DEFAULT_STRATEGY,
            strategy_config=strategy_config or {},
            memory=budget,
            auto_snapshots=AUTO_SNAPSHOTS if auto_snapshots is None else auto_snapshots,
        )

    def settings(self) -> dict[str, Any]:
        """The options of :meth:`create`, as this workspace has them."""
        return {
            "model": self.model,
            "backend": self.backend,
            "strategy": self.strategy,
            "strategy_config": self.strategy_config,
            "memory_per_class": self.memory.per_class,
            "memory_total": self.memory.total,
            "selection": self.memory.selection,
            "auto_snapshots": self.auto_snapshots,
        }

    def check_same(self, asked: dict[str, Any]) -> None:
        """Options given when reopening must be the ones the workspace was created with."""
        for what, stored in self.settings().items():
            value = asked.get(what)
            if value is None or value == stored:
                continue
            if what == "model":
                raise ModelMismatchError(f"workspace was built with model {stored!r}, not {value!r}")
            if what == "backend":
                raise ModelMismatchError(
                    f"workspace encodes with the {stored} backend, not {value}; "
                    "its vectors are not mixed with another backend's"
                )
            raise InvalidInputError(f"workspace was created with {what}={stored!r}; it cannot change to {value!r}")

    def with_rejection(self, **changes: Any) -> WorkspaceConfig:
        return replace(self, rejection=replace(self.rejection, **changes))
