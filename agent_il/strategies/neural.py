"""Gradient-trained head with optional replay and online EWC.

Body ``dim -> hidden`` (ReLU), then cosine-normalised output rows without bias: a class's score
is ``scale * cos(h, w_c)``. A new class's row starts at the normalised mean hidden feature of
its examples (its prototype), so it is usable before any gradient step and cannot out-shout old
classes by norm alone.

Replay is class-balanced: each step draws from the exemplar memory as many samples as keep every
old class as frequent as every class of the current task (at most ``replay_cap``, the rest made
up by loss weights). The EWC Fisher is taken on the task's data plus the memory. These choices
(and lambda = 1000) were made on a validation split carved out of the training data.

One class covers ``naive``, ``ewc``, ``replay`` and ``ewc-replay``: they differ only in whether
the memory is mixed into each step and whether the EWC penalty is added.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from agent_il.strategies.base import Revision, Strategy
from agent_il.strategies.ewc import OnlineEWC


class _Head(nn.Module):
    def __init__(self, dim: int, hidden: int, n_classes: int, scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.out = nn.Parameter(torch.empty(n_classes, hidden))
        nn.init.normal_(self.out, std=hidden**-0.5)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.normalize(self.body(x), dim=1) @ F.normalize(self.out, dim=1).T

    @torch.no_grad()
    def grow(self, n_classes: int, x: Tensor, y: Tensor) -> None:
        """Add rows for classes ``old..n_classes-1``, each at its examples' mean hidden feature."""
        old = self.out.shape[0]
        if n_classes <= old:
            return
        rows = torch.randn(n_classes - old, self.out.shape[1]) * self.out.shape[1] ** -0.5
        h = self.body(x)
        for c in range(old, n_classes):
            mine = y == c
            if mine.any():
                rows[c - old] = F.normalize(h[mine].mean(0), dim=0)
        self.out = nn.Parameter(torch.cat([self.out.detach(), rows]))


class NeuralStrategy(Strategy):
    name: ClassVar[str] = "naive"
    uses_ewc: ClassVar[bool] = False

    def __init__(
        self,
        *,
        hidden: int = 256,
        scale: float = 16.0,
        epochs: int = 10,
        min_steps: int = 200,
        batch_size: int = 32,
        replay_cap: int = 128,
        lr: float = 1e-3,
        ewc_lambda: float = 1000.0,
        ewc_gamma: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.hidden, self.scale, self.epochs, self.min_steps = hidden, scale, epochs, min_steps
        self.batch_size, self.replay_cap, self.lr, self.seed = batch_size, replay_cap, lr, seed
        self.ewc = OnlineEWC(ewc_lambda, ewc_gamma)
        self.head: _Head | None = None
        self._tasks_seen = 0

    def config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "scale": self.scale,
            "epochs": self.epochs,
            "min_steps": self.min_steps,
            "batch_size": self.batch_size,
            "replay_cap": self.replay_cap,
            "lr": self.lr,
            "ewc_lambda": self.ewc.lam,
            "ewc_gamma": self.ewc.gamma,
            "seed": self.seed,
        }

    @property
    def n_classes(self) -> int:
        return 0 if self.head is None else self.head.out.shape[0]

    def fit(self, x: Tensor, y: Tensor, n_classes: int, replay: tuple[Tensor, Tensor] | None) -> None:
        gen = torch.Generator().manual_seed(self.seed * 1000 + self._tasks_seen)
        if self.head is None:
            torch.manual_seed(self.seed)
            self.head = _Head(x.shape[1], self.hidden, 0, self.scale)
        head = self.head
        head.grow(n_classes, x, y)
        use_ewc = self.uses_ewc and bool(self.ewc.fisher)
        if use_ewc:
            self.ewc.fit_shapes(head)
        if not (self.uses_replay and replay is not None and len(replay[0])):
            replay = None
        new_classes = len(torch.unique(y))
        old_share = (n_classes - new_classes) / new_classes  # old classes per class of this task
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
            weights = None
            if replay is not None:
                wanted = max(1, round(len(idx) * old_share))
                drawn = min(wanted, self.replay_cap)
                m = torch.randint(len(replay[0]), (drawn,), generator=gen)
                xb, yb = torch.cat([xb, replay[0][m]]), torch.cat([yb, replay[1][m]])
                weights = torch.cat([torch.ones(len(idx)), torch.full((drawn,), wanted / drawn)])
            losses = F.cross_entropy(head(xb), yb, reduction="none")
            loss = losses.mean() if weights is None else (losses * weights).sum() / weights.sum()
            if use_ewc:
                loss = loss + self.ewc.penalty(head)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        if self.uses_ewc:
            xs, ys = (x, y) if replay is None else (torch.cat([x, replay[0]]), torch.cat([y, replay[1]]))
            self.ewc.consolidate(head, xs, ys)
        self._tasks_seen += 1

    def revise(self, order: list[int | None], change: Revision, replay: tuple[Tensor, Tensor] | None) -> None:
        """Approximate: output rows (and their EWC importance) follow ``order``, a new column
        starts at its rows' mean feature, then one short pass relearns the exemplars and the
        relabelled rows. What a removed example taught the body is not unlearned."""
        assert self.head is not None, "fit() first"
        moved = change.y_new >= 0
        x, y = change.x[moved], change.y_new[moved]
        with torch.no_grad():
            h = self.head.body(x) if len(x) else None
            rows = []
            for c, j in enumerate(order):
                mine = y == c
                if j is not None:
                    rows.append(self.head.out[j].detach())
                elif h is not None and bool(mine.any()):
                    rows.append(F.normalize(h[mine].mean(0), dim=0))
                else:
                    rows.append(torch.randn(self.hidden) * self.hidden**-0.5)
            self.head.out = nn.Parameter(torch.stack(rows) if rows else self.head.out.detach()[:0])
        self.ewc.remap("out", order)
        if replay is not None and len(replay[0]):
            x, y = torch.cat([x, replay[0]]), torch.cat([y, replay[1]])
        if len(x) and order:
            self.fit(x, y, len(order), None)

    @torch.no_grad()
    def raw_scores(self, x: Tensor) -> Tensor:
        assert self.head is not None, "fit() first"
        return self.head(x)  # cosine logits: already on a fixed scale

    def tensors(self) -> dict[str, Tensor]:
        assert self.head is not None, "fit() first"
        out = {f"head.{k}": v.detach().clone() for k, v in self.head.state_dict().items()}
        out["tasks_seen"] = torch.tensor(self._tasks_seen)
        out.update(self.ewc.tensors())
        return out

    def load_tensors(self, tensors: dict[str, Tensor]) -> None:
        state = {k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")}
        dim, n_classes = state["body.0.weight"].shape[1], state["out"].shape[0]
        self.head = _Head(dim, self.hidden, n_classes, self.scale)
        self.head.load_state_dict(state)
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
