"""Gradient-trained MLP head (dim -> hidden -> classes) with optional replay and online EWC.

One class covers ``naive``, ``ewc``, ``replay`` and ``ewc-replay``: they differ only in whether
the exemplar memory is mixed into each step and whether the EWC penalty is added.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from agent_il.ewc import OnlineEWC
from agent_il.strategies.base import Strategy


class _Head(nn.Module):
    def __init__(self, dim: int, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))

    def grow(self, n_classes: int) -> None:
        """Add output units for new classes, keeping the old units' weights."""
        old = self.out
        if n_classes <= old.out_features:
            return
        new = nn.Linear(old.in_features, n_classes)
        with torch.no_grad():
            new.weight[: old.out_features] = old.weight
            new.bias[: old.out_features] = old.bias
        self.out = new


class NeuralStrategy(Strategy):
    name: ClassVar[str] = "naive"
    uses_ewc: ClassVar[bool] = False

    def __init__(
        self,
        *,
        hidden: int = 256,
        epochs: int = 10,
        min_steps: int = 200,
        batch_size: int = 32,
        lr: float = 1e-3,
        ewc_lambda: float = 1000.0,
        ewc_gamma: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.hidden, self.epochs, self.min_steps = hidden, epochs, min_steps
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.ewc = OnlineEWC(ewc_lambda, ewc_gamma)
        self.head: _Head | None = None
        self._tasks_seen = 0

    def config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "epochs": self.epochs,
            "min_steps": self.min_steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "ewc_lambda": self.ewc.lam,
            "ewc_gamma": self.ewc.gamma,
            "seed": self.seed,
        }

    @property
    def n_classes(self) -> int:
        return 0 if self.head is None else self.head.out.out_features

    def _ensure_head(self, dim: int, n_classes: int) -> _Head:
        if self.head is None:
            torch.manual_seed(self.seed)
            self.head = _Head(dim, self.hidden, n_classes)
        self.head.grow(n_classes)
        return self.head

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        gen = torch.Generator().manual_seed(self.seed + self._tasks_seen)
        head = self._ensure_head(x.shape[1], n_classes)
        use_ewc = self.uses_ewc and bool(self.ewc.fisher)
        if use_ewc:
            self.ewc.fit_shapes(head)
        if not (self.uses_replay and replay is not None and len(replay[0])):
            replay = None
        opt = torch.optim.Adam(head.parameters(), lr=self.lr)
        per_epoch = math.ceil(len(x) / self.batch_size)
        steps = max(per_epoch * self.epochs, self.min_steps)
        order = torch.randperm(len(x), generator=gen)
        head.train()
        for step in range(steps):
            i = step % per_epoch
            if i == 0 and step:
                order = torch.randperm(len(x), generator=gen)
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            xb, yb = x[idx], y[idx]
            if replay is not None:
                m = torch.randint(len(replay[0]), (len(idx),), generator=gen)
                xb, yb = torch.cat([xb, replay[0][m]]), torch.cat([yb, replay[1][m]])
            loss = nn.functional.cross_entropy(head(xb), yb)
            if use_ewc:
                loss = loss + self.ewc.penalty(head)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        if self.uses_ewc:
            self.ewc.consolidate(head, x, y)
        self._tasks_seen += 1

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        assert self.head is not None, "fit() first"
        return self.head(x)

    def tensors(self) -> dict[str, Tensor]:
        assert self.head is not None, "fit() first"
        out = {f"head.{k}": v.detach().clone() for k, v in self.head.state_dict().items()}
        out["tasks_seen"] = torch.tensor(self._tasks_seen)
        out.update(self.ewc.tensors())
        return out

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        head_state = {k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")}
        dim, n_classes = head_state["body.0.weight"].shape[1], head_state["out.weight"].shape[0]
        self.head = _Head(dim, self.hidden, n_classes)
        self.head.load_state_dict(head_state)
        self.head.eval()
        self._tasks_seen = int(tensors["tasks_seen"])
        self.ewc.load_tensors(tensors)


class EWCStrategy(NeuralStrategy):
    name = "ewc"
    uses_ewc = True


class ReplayStrategy(NeuralStrategy):
    name = "replay"
    uses_replay = True


class EWCReplayStrategy(NeuralStrategy):
    name = "ewc-replay"
    uses_ewc = True
    uses_replay = True
