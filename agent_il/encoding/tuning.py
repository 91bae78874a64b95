"""Fine-tuning a copy of a sentence-transformers encoder on labelled texts: consolidation's slow
path, where the encoder itself learns from the knowledge base.

Only the top ``layers`` transformer layers learn. The layers below run once over every text and
their output is kept, so an epoch costs the top layers' forward and backward alone (about a third
of a whole fine-tune on 2 CPU cores), and what is stored is just the tuned layers' tensors. The
objective is cross-entropy through a cosine-softmax head started at the class means, with classes
balanced by sampling. A time budget shortens the schedule after a few timed steps rather than
cutting a run short mid-way, so a budgeted run still ends at a low learning rate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_il.errors import InvalidInputError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

_TIMED_STEPS = 8  # steps timed before the schedule is fitted to the budget
_CHECK_ROWS = 8  # texts the cached path is checked on against the model's own forward pass
_TOLERANCE = 1e-4
_POOL = 8  # batches drawn at once, then cut by text length


@dataclass(frozen=True)
class Plan:
    """How to fine-tune (settings, not learned values)."""

    layers: int = 2
    epochs: float = 3.0
    batch_size: int = 64
    lr: float = 2e-4
    head_lr: float = 1e-2
    scale: float = 20.0  # cosine-softmax temperature: logits are scale * cos(embedding, class)
    label_smoothing: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.layers < 1 or self.batch_size < 2 or not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise InvalidInputError("fine-tuning needs layers >= 1, batch_size >= 2 and epochs > 0")


@dataclass
class Tuned:
    """The tuned tensors (names as in the transformer's state dict) and what the run did."""

    tensors: dict[str, torch.Tensor]
    steps: int
    planned_steps: int
    examples: int
    classes: int
    device: str
    epochs: float  # passes over the examples the steps made
    cached: bool  # whether the lower layers' output was kept (else every step ran the whole model)
    seconds: dict[str, float] = field(default_factory=dict)


def fine_tune(
    model: SentenceTransformer,
    texts: Sequence[str],
    labels: Sequence[str],
    plan: Plan = Plan(),
    *,
    seconds: Callable[[float], float] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Tuned:
    """Tune ``model`` in place on ``texts`` (at least two classes) and return its tuned tensors.
    ``seconds(full_pass)``: the training steps' budget, told what one pass of the whole model
    over the texts is estimated to take; ``on_progress(done, total)`` follows the steps."""
    import torch

    classes = sorted(set(labels))
    if len(classes) < 2 or len(texts) != len(labels):
        raise InvalidInputError("fine-tuning needs labelled texts of at least two classes")
    start = time.perf_counter()
    torch.manual_seed(plan.seed)
    index = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([index[v] for v in labels])
    body = _Body(model, plan.layers)
    cached = body.cache(texts)
    lowered = time.perf_counter()
    full_pass = (lowered - start) * len(body.stack) / max(body.split, 1)  # the lower pass scaled up
    first = torch.zeros(len(texts), model.get_embedding_dimension() or 1, device=body.device)
    with torch.inference_mode():
        for batch in body.by_length(np.arange(len(texts)), 256):
            first[torch.as_tensor(batch, device=body.device)] = body.embed(batch)
    means = torch.stack([first[(y == c).to(first.device)].mean(0) for c in range(len(classes))])
    head = torch.nn.Parameter(torch.nn.functional.normalize(means, dim=-1).to(body.device))
    tuned = body.parameters()
    optimiser = torch.optim.AdamW(
        [{"params": tuned, "lr": plan.lr}, {"params": [head], "lr": plan.head_lr}], weight_decay=0.01
    )
    per_epoch = math.ceil(len(texts) / plan.batch_size)
    planned = max(1, math.ceil(per_epoch * plan.epochs))
    total = planned
    sampler = _Balanced(y.numpy(), body.lengths(), plan.batch_size, plan.seed)
    y = y.to(body.device)
    model.train()
    steps, began = 0, time.perf_counter()
    try:
        while steps < total:
            rows = sampler.next()
            fraction = steps / total
            warm = min(1.0, (steps + 1) / max(1, total // 10))
            for group, lr in zip(optimiser.param_groups, (plan.lr, plan.head_lr)):
                group["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * fraction))
            e = body.embed(rows)
            logits = plan.scale * e @ torch.nn.functional.normalize(head, dim=-1).T
            loss = torch.nn.functional.cross_entropy(logits, y[rows], label_smoothing=plan.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
            if seconds is not None and steps == _TIMED_STEPS:
                per_step = (time.perf_counter() - began) / steps
                total = max(steps, min(planned, steps + int(seconds(full_pass) / per_step)))
            if on_progress:
                on_progress(steps, total)
    finally:
        model.eval()
    done = time.perf_counter()
    return Tuned(
        tensors={k: v.detach().to("cpu").clone() for k, v in body.named_tuned().items()},
        steps=steps,
        planned_steps=planned,
        examples=len(texts),
        classes=len(classes),
        device=body.device,
        epochs=round(steps * plan.batch_size / len(texts), 3),
        cached=cached,
        seconds={"lower_layers": round(lowered - start, 3), "training": round(done - began, 3)},
    )


class _Balanced:
    """Batches drawn so that every class is as likely as any other, whatever its count; drawn
    ``_POOL`` batches at a time and cut by length, so a batch's texts are padded little."""

    def __init__(self, y: np.ndarray, lengths: np.ndarray, size: int, seed: int) -> None:
        counts = np.bincount(y)
        self.p = 1.0 / counts[y]
        self.p /= self.p.sum()
        self.lengths = lengths
        self.size = min(size, len(y))
        self.rng = np.random.default_rng([seed, 23])
        self.ready: list[np.ndarray] = []

    def next(self) -> np.ndarray:
        if not self.ready:
            pool = self.rng.choice(len(self.p), size=min(len(self.p), _POOL * self.size), replace=False, p=self.p)
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            cut = [pool[s : s + self.size] for s in range(0, len(pool) - self.size + 1, self.size)]
            self.ready = [cut[i] for i in self.rng.permutation(len(cut))]
        return self.ready.pop()


class _Body:
    """The model split at its top ``layers``: the rest run once (when the split reproduces the
    model's own output; else every step runs the whole model with the rest frozen)."""

    def __init__(self, model: SentenceTransformer, layers: int) -> None:
        self.model = model
        self.device = str(model.device)
        self.transformer = model[0].auto_model
        stack = getattr(getattr(self.transformer, "encoder", None), "layer", None)
        if not stack:
            raise InvalidInputError("the model has no stack of transformer layers to tune")
        self.split = max(0, len(stack) - layers)  # a model with fewer layers tunes them all
        self.stack = stack
        for p in model.parameters():
            p.requires_grad_(False)
        for p in self.parameters():
            p.requires_grad_(True)
        self.hidden: list[torch.Tensor] | None = None
        self.features: list[dict[str, Any]] = []

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.stack[self.split :] for p in layer.parameters()]

    def named_tuned(self) -> dict[str, torch.Tensor]:
        prefix = [f"encoder.layer.{i}." for i in range(self.split, len(self.stack))]
        return {k: v for k, v in self.transformer.state_dict().items() if k.startswith(tuple(prefix))}

    def cache(self, texts: Sequence[str]) -> bool:
        """Run the lower layers once over ``texts``; returns whether their output is used."""
        import torch

        tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize
        self.features = [tokenize([t]) for t in texts]
        rows = self.features[:_CHECK_ROWS]
        hidden: list[torch.Tensor] = [None] * len(texts)  # type: ignore[list-item]
        with torch.inference_mode():
            reference = self.model(self._padded(rows))["sentence_embedding"]
            for batch in self.by_length(np.arange(len(texts)), 128):  # little padding: long texts together
                hidden_rows = self._lower([self.features[i] for i in batch])
                for i, h in zip(batch, hidden_rows):
                    hidden[i] = h
        self.hidden = hidden
        with torch.inference_mode():
            mine = self.embed(np.arange(len(rows)))
        gap = float((torch.nn.functional.normalize(reference, dim=-1) - mine).abs().max())
        if not gap < _TOLERANCE:  # an architecture this split does not reproduce: run it whole
            self.hidden = None
        return self.hidden is not None

    def lengths(self) -> np.ndarray:
        return np.array([int(f["input_ids"].shape[1]) for f in self.features])

    def by_length(self, rows: np.ndarray, size: int) -> list[np.ndarray]:
        """``rows`` in batches of ``size``, shortest texts first."""
        order = rows[np.argsort(self.lengths()[rows], kind="stable")]
        return [order[s : s + size] for s in range(0, len(order), size)]

    def _padded(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n = max(int(f["input_ids"].shape[1]) for f in features)
        out: dict[str, Any] = {}
        for key in (k for k, v in features[0].items() if isinstance(v, torch.Tensor) and v.dim() == 2):
            rows = [torch.nn.functional.pad(f[key], (0, n - f[key].shape[1])) for f in features]
            out[key] = torch.cat(rows).to(self.device)
        return out

    def _mask(self, mask: torch.Tensor) -> torch.Tensor:
        import torch

        return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min

    @staticmethod
    def _out(result: Any) -> torch.Tensor:
        return result[0] if isinstance(result, tuple) else result

    def _lower(self, features: list[dict[str, Any]]) -> list[torch.Tensor]:
        batch = self._padded(features)
        kwargs = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
        h = self.transformer.embeddings(input_ids=batch["input_ids"], **kwargs)
        mask = self._mask(batch["attention_mask"])
        for layer in self.stack[: self.split]:
            h = self._out(layer(h, attention_mask=mask))
        lengths = batch["attention_mask"].sum(1).tolist()
        return [h[i, : int(n)].clone() for i, n in enumerate(lengths)]

    def embed(self, rows: np.ndarray) -> torch.Tensor:
        """Normalised embeddings of the cached texts ``rows``, through the tuned layers."""
        import torch

        if self.hidden is None:
            out = self.model(self._padded([self.features[i] for i in rows]))["sentence_embedding"]
            return torch.nn.functional.normalize(out, dim=-1)
        hs = [self.hidden[i] for i in rows]
        n = max(h.shape[0] for h in hs)
        h = torch.stack([torch.nn.functional.pad(x, (0, 0, 0, n - x.shape[0])) for x in hs])
        mask = torch.stack([(torch.arange(n) < x.shape[0]).long() for x in hs]).to(self.device)
        extended = self._mask(mask)
        for layer in self.stack[self.split :]:
            h = self._out(layer(h, attention_mask=extended))
        feats: dict[str, Any] = {"token_embeddings": h, "attention_mask": mask}
        for module in list(self.model)[1:]:
            feats = module(feats)
        return torch.nn.functional.normalize(feats["sentence_embedding"], dim=-1)
