"""Consolidation, the slow path beside the fast one: the encoder itself learns from the knowledge
base. Mixed into :class:`agent_il.learner.IntentLearner`.

A learn stays what it was (the ridge head over the current encoder, in well under a second).
``consolidate`` fine-tunes a copy of the *base* encoder on every stored example (never on a
held-out one), keeps the tuned layers in the workspace as a blob its space owns, and migrates to
it: every stored text encoded again and every learn learned again, as one transaction. Starting
from the base model each time keeps the adapted encoder, like the head, a function of the
examples stored now; ``rollback`` returns to the encoder and head before."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from agent_il import validation
from agent_il.encoding import adapted, tuning
from agent_il.errors import InvalidInputError
from agent_il.migration import Migration
from agent_il.results import ConsolidationReport
from agent_il.storage.base import new_space

DEFAULT_MINUTES = 10.0
MAX_MINUTES = 7 * 24 * 60.0
_EXPORT_SECONDS = 30.0  # kept from the budget for the adapted encoder's ONNX export and the commit
_ENCODE_MARGIN = 1.2  # the migration's encode, over an estimate from the lower layers' pass

Progress = Callable[[str, int, int], None]


class Consolidation(Migration):
    """``consolidate``: fine-tune, keep, migrate. The learner provides the attributes."""

    def consolidate(
        self,
        *,
        max_minutes: float = DEFAULT_MINUTES,
        plan: tuning.Plan | None = None,
        on_progress: Progress | None = None,
    ) -> ConsolidationReport:
        """Fine-tune the base encoder on every stored example, in about ``max_minutes`` in all
        (the training takes what encoding every stored text again is estimated to leave), then
        migrate to it. ``on_progress(phase, done, total)``: ``tuning`` steps, then ``encoding``."""
        from agent_il.encoding.base import default_device
        from agent_il.encoding.sbert import load_sentence_transformer

        minutes = validation.real(max_minutes, "max_minutes", 0.0, MAX_MINUTES, open_min=True)
        start = time.perf_counter()
        self.refresh()
        state = self.state
        if state.examples is None:
            raise InvalidInputError(
                f"{self.location} was made before agent-il kept every example: there is nothing to fine-tune on"
            )
        records = self.stores["examples"].load(state.live("examples"))
        texts = [t for t in records.texts if t is not None]
        if len(texts) < len(records.texts):
            raise InvalidInputError(
                f"{len(records.texts) - len(texts)} examples were learned as vectors, without their text: "
                "the encoder cannot learn from them (remove them first: `agent-il examples list`)"
            )
        labels = [str(m["label"]) for m in records.metadatas]
        if len(set(labels)) < 2:
            raise InvalidInputError("nothing to consolidate: the encoder learns from examples of two intents or more")
        base = adapted.base_of(state.config.model, self.workspace.blobs.get)
        model = load_sentence_transformer(base, self.encoder.device or default_device())
        stored = len(texts) + len(state.live("holdout")) + len(self.inbox.store.all_ids())
        deadline = start + 60.0 * minutes

        def budget(full_pass: float) -> float:
            return deadline - time.perf_counter() - _EXPORT_SECONDS - _ENCODE_MARGIN * full_pass * stored / len(texts)

        tick = (lambda done, total: on_progress("tuning", done, total)) if on_progress else None
        tuned = tuning.fine_tune(model, texts, labels, plan or tuning.Plan(), seconds=budget, on_progress=tick)
        info = {
            "examples": tuned.examples,
            "classes": tuned.classes,
            "steps": tuned.steps,
            "epochs": tuned.epochs,
            "generation": state.generation,
        }
        data = adapted.pack(tuned.tensors, base, info)
        space = new_space()
        model_id = adapted.model_id(space, data)
        self.workspace.blobs.put(adapted.blob_key(model_id), data)
        tuned_at = time.perf_counter()
        encode = (lambda done, total: on_progress("encoding", done, total)) if on_progress else None
        newest = max(int(t) for t, by_label in state.examples.items() if any(by_label.values()))
        moved = self._move(replace(state.config, model=model_id), space, encode, newest)  # drops the space if it fails
        finished = time.perf_counter()
        return ConsolidationReport(
            base=base,
            encoder=model_id,
            tuning={
                **info,
                "planned_steps": tuned.planned_steps,
                "device": tuned.device,
                "lower_layers_cached": tuned.cached,
                "bytes": len(data),
            },
            migration=moved,
            seconds=round(finished - start, 3),
            timings={"tuning": round(tuned_at - start, 3), **tuned.seconds, "migration": round(finished - tuned_at, 3)},
        )
