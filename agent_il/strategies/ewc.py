"""Online EWC (Schwarz et al., 2018): one Fisher diagonal consolidated over every past task.

Penalty ``lam * sum F (theta - theta*)^2``. After each task ``F <- gamma * F + F_task`` and
``theta* <- theta``. The article's sketch recomputes F from the last task only, which lets the
head drift away from everything older; here importance accumulates. Output units that appear
later have no importance yet, so F and theta* are zero-padded when a layer grows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap


def _pad_rows(t: Tensor, shape: torch.Size) -> Tensor:
    if t.shape == shape:
        return t
    out = torch.zeros(shape, dtype=t.dtype)
    out[tuple(slice(0, n) for n in t.shape)] = t
    return out


class OnlineEWC:
    def __init__(self, lam: float, gamma: float = 1.0) -> None:
        self.lam = lam
        self.gamma = gamma
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def fit_shapes(self, model: nn.Module) -> None:
        """Zero-pad F and theta* to the model's (possibly grown) parameter shapes."""
        for name, p in model.named_parameters():
            if name in self.fisher:
                self.fisher[name] = _pad_rows(self.fisher[name], p.shape)
                self.anchor[name] = _pad_rows(self.anchor[name], p.shape)

    def remap(self, name: str, order: list[int | None]) -> None:
        """Rows of parameter ``name`` follow ``order`` (None: a new row, with no importance yet)."""
        for kind in (self.fisher, self.anchor):
            if name in kind:
                old = kind[name]
                zero = torch.zeros(old.shape[1:], dtype=old.dtype)
                kind[name] = torch.stack([old[j] if j is not None and j < len(old) else zero for j in order])

    def penalty(self, model: nn.Module) -> Tensor:
        total = torch.zeros(())
        for name, p in model.named_parameters():
            f = self.fisher.get(name)
            if f is not None:
                total = total + (f * (p - self.anchor[name]) ** 2).sum()
        return self.lam * total

    @torch.no_grad()
    def consolidate(self, model: nn.Module, x: Tensor, y: Tensor, chunk: int = 256) -> None:
        """Add the empirical Fisher of (x, y) under ``model`` and move theta* to the current weights."""
        params = {k: v.detach() for k, v in model.named_parameters()}

        def log_lik(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
            out = functional_call(model, p, (xi.unsqueeze(0),))
            return -nn.functional.cross_entropy(out, yi.unsqueeze(0))

        per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))
        task_fisher = {k: torch.zeros_like(v) for k, v in params.items()}
        for start in range(0, len(x), chunk):
            with torch.enable_grad():
                grads = per_sample(params, x[start : start + chunk], y[start : start + chunk])
            for k, g in grads.items():
                task_fisher[k] += (g**2).sum(dim=0)
        self.fit_shapes(model)
        for k, f in task_fisher.items():
            f /= max(len(x), 1)
            self.fisher[k] = self.gamma * self.fisher[k] + f if k in self.fisher else f
            self.anchor[k] = params[k].clone()

    def tensors(self, prefix: str = "ewc") -> dict[str, Tensor]:
        out = {f"{prefix}.fisher.{k}": v for k, v in self.fisher.items()}
        out.update({f"{prefix}.anchor.{k}": v for k, v in self.anchor.items()})
        return out

    def load_tensors(self, tensors: dict[str, Tensor], prefix: str = "ewc") -> None:
        for key, value in tensors.items():
            kind, _, name = key.removeprefix(f"{prefix}.").partition(".")
            if key.startswith(f"{prefix}.") and kind in ("fisher", "anchor"):
                getattr(self, kind)[name] = value
