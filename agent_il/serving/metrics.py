"""Prometheus metrics of one server (its own registry, so two servers in one process, as in tests,
count apart). Counters and histograms are updated by the calls; gauges are read from the learner's
committed state at each scrape."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from agent_il.tools.models import Classification, ToolResult
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner

CONTENT_TYPE = CONTENT_TYPE_LATEST
PREDICT_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LEARN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The kind of each refused or failed HTTP request, by status (anything else: http_<status>).
ERROR_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    421: "host",
    422: "invalid",
    429: "rate_limited",
}


class Metrics:
    def __init__(self, learner: IntentLearner) -> None:
        self.registry = r = CollectorRegistry()
        self.predictions = Counter(
            "agent_il_predictions", "Texts classified, by answer.", ["intent", "known"], registry=r
        )
        self.predict_seconds = Histogram(
            "agent_il_predict_seconds", "Time of one classify call.", buckets=PREDICT_BUCKETS, registry=r
        )
        self.learn_seconds = Histogram(
            "agent_il_learn_seconds", "Time of one learn (or learned correction).", buckets=LEARN_BUCKETS, registry=r
        )
        self.errors = Counter("agent_il_errors", "Refused or failed requests, by kind.", ["kind"], registry=r)
        state = lambda: learner.state  # noqa: E731 - read at each scrape: the last committed generation
        Gauge("agent_il_generation", "The committed generation.", registry=r).set_function(lambda: state().generation)
        Gauge("agent_il_intents", "Known intents.", registry=r).set_function(lambda: len(state().labels))
        Gauge("agent_il_exemplars", "Exemplars in the replay memory.", registry=r).set_function(
            lambda: sum(len(ids) for ids in state().exemplars.values())
        )
        Gauge("agent_il_inbox_size", "Unknowns and corrections waiting in the inbox.", registry=r).set_function(
            learner.inbox.store.count
        )

    def tool_call(self, name: str, result: ToolResult, seconds: float) -> None:
        """Count one tool call that answered."""
        if name == CLASSIFY_INTENT and isinstance(result, Classification):
            self.predictions.labels(intent=result.label, known=str(result.known).lower()).inc()
            self.predict_seconds.observe(seconds)
        elif name == LEARN_INTENT or (name == CORRECT_INTENT and getattr(result, "status", "") == "learned"):
            self.learn_seconds.observe(seconds)

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def status(self, code: int) -> None:
        """Count a refused (4xx) or failed (5xx) HTTP response by its kind."""
        if code >= 500:
            self.error("internal")
        elif code >= 400:
            self.error(ERROR_KINDS.get(code, f"http_{code}"))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def arender(self) -> bytes:
        """:meth:`render` on a worker thread: the inbox gauge asks Chroma, off the event loop."""
        return await asyncio.to_thread(self.render)
