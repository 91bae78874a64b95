"""The contract every adapter distribution must pass, run by each plugin's own tests (as
scikit-learn's ``check_estimator`` or River's checks are run by estimators' tests).

The checks go through the adapter's framework, not around it: a plugin's test hands
:func:`check_adapter` two small callables, one that lists the tool names its framework exposes
for an :class:`IntentTools`, and one that invokes a tool through the framework with raw
arguments, as an agent would, and returns the result (a JSON object) or the refusal's text. The
adapter then has to show that it registers properly, exposes exactly the surface's tools, passes
results through unchanged, and lets nothing past the core's validation, limits and learning switch,
without echoing the caller's data in its refusals. A correction the checks queue is taken out again.

Example, for an adapter whose tools are plain callables::

    check_adapter(
        "my-framework",
        learner,
        list_tools=lambda tools: [t.name for t in build_tools(tools)],
        invoke=lambda tools, name, args: my_framework_run(build_tools(tools), name, args),
    )
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from agent_il.errors import InvalidInputError
from agent_il.tools.adapters import ADAPTER_GROUP, Adapter, describe, installed, load
from agent_il.tools.cases import (
    CHECK_LABEL,
    CORRECTION,
    EXAMPLES,
    LEARN_REFUSALS,
    LIMITS,
    Refusal,
    correction_refusals,
    read_refusals,
    read_samples,
)
from agent_il.tools.surface import CLASSIFY_INTENT, CORRECT_INTENT, LEARN_INTENT, LIST_INTENTS, SPECS, IntentTools

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner

_T = TypeVar("_T")
ListTools = Callable[[IntentTools], Iterable[str]]
"""The names of the tools the framework exposes for these ``IntentTools``."""
Invoke = Callable[[IntentTools, str, dict[str, Any]], Any]
"""Run one tool through the framework with raw arguments: the result as a mapping (or the output
model), or the text of the framework's refusal as a ``str``. A tool the framework does not offer is
a refusal too: return the framework's error (or say so) rather than raise."""


class AdapterCheckError(AssertionError):
    """Every check an adapter failed, each named, so one run shows all that needs fixing."""

    def __init__(self, adapter: str, failures: list[str]) -> None:
        self.adapter, self.failures = adapter, failures
        listed = "\n".join(f"- {f}" for f in failures)
        super().__init__(f"adapter {adapter!r} fails {len(failures)} contract check(s):\n{listed}")


class _Failed(Exception):
    pass


_SHORT = reprlib.Repr()  # keyword arguments need Python 3.12
_SHORT.maxstring, _SHORT.maxlist, _SHORT.maxother = 40, 4, 40
_QUOTE = reprlib.Repr()
_QUOTE.maxstring = 240


def _show(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_SHORT.repr(v)}" for k, v in arguments.items())


def _lines(problems: list[str]) -> str:
    return problems[0] if len(problems) == 1 else "".join(f"\n    {p}" for p in problems)


def _difference(got: Any, want: Any, path: str = "result") -> str | None:
    """Where ``got`` differs from ``want``; floats within 1e-6 relative are equal (the framework may
    run the call on another thread, and CPU kernels need not round identically everywhere)."""
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        return None if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9) else f"{path}: {got!r} != {want!r}"
    if isinstance(want, dict) and isinstance(got, dict):
        if set(got) != set(want):
            return f"{path}: keys {sorted(got)} != {sorted(want)}"
        return next((d for k in want if (d := _difference(got[k], want[k], f"{path}.{k}"))), None)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return f"{path}: {len(got)} items != {len(want)}"
        return next((d for i, (g, w) in enumerate(zip(got, want)) if (d := _difference(g, w, f"{path}[{i}]"))), None)
    return None if type(got) is type(want) and got == want else f"{path}: {got!r} != {want!r}"


def _runs_code_of(package: str, run: Callable[[], object]) -> bool:
    """Whether ``run`` calls a function of ``package`` on this thread: the callables must go through
    the registered adapter, not another one (nor around every adapter). Any other profiler is
    suspended meanwhile."""
    seen = False

    def profile(frame: Any, event: str, arg: object) -> None:
        nonlocal seen
        if event == "call" and str(frame.f_globals.get("__name__", "")).partition(".")[0] == package:
            seen = True

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        run()
    except Exception:
        pass  # whether it raises is for the other checks to say
    finally:
        sys.setprofile(previous)
    return seen


@dataclass
class _Run:
    name: str
    learner: IntentLearner
    list_tools: ListTools
    invoke: Invoke
    text: str
    failures: list[str] = field(default_factory=list)
    off: IntentTools = field(init=False)
    on: IntentTools = field(init=False)

    def __post_init__(self) -> None:
        self.off = IntentTools(self.learner, limits=LIMITS, inbox=False)  # inbox off: the checks store nothing
        self.on = IntentTools(self.learner, allow_learning=True, limits=LIMITS, inbox=False)
        self.review = IntentTools(self.learner, limits=LIMITS)  # learning off, corrections kept for review

    def check(self, what: str, check: Callable[[], _T]) -> _T | None:
        """``check``'s value, or None with its failure recorded: one failure does not hide the others."""
        try:
            return check()
        except _Failed as exc:
            self.failures.append(f"{what}: {exc}")
            return None

    def call(self, tools: IntentTools, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | str:
        """Through the framework: the result as the JSON object an agent gets, or a refusal's text."""
        try:
            out = self.invoke(tools, tool, dict(arguments))
        except Exception as exc:
            raise _Failed(
                f"{tool}({_show(arguments)}) raised {type(exc).__name__}: {exc}; the framework must answer a bad "
                "call with a refusal the agent can act on, and invoke must return its text"
            ) from exc
        if isinstance(out, str):
            return out
        if isinstance(out, BaseModel):
            out = out.model_dump(mode="json")
        if not isinstance(out, Mapping):
            raise _Failed(f"{tool}({_show(arguments)}) returned a {type(out).__name__}, not a mapping or a str")
        try:
            return json.loads(json.dumps(dict(out)))
        except (TypeError, ValueError) as exc:
            raise _Failed(f"{tool}({_show(arguments)}) returned a result that is not JSON: {exc}") from None

    def state(self) -> dict[str, Any]:
        return self.off.call(LIST_INTENTS, {}).model_dump(mode="json")

    # ----------------------------------------------------------------- the checks
    def registered(self) -> Adapter:
        found = [ep for ep in installed() if ep.name == self.name]
        if not found:
            names = ", ".join(ep.name for ep in installed()) or "none"
            raise _Failed(f"no entry point {self.name!r} in group {ADAPTER_GROUP!r} (installed: {names})")
        error = describe(found[0])["error"]
        if error:
            raise _Failed(f"agent-il plugins lists it as broken: {error}")
        try:
            adapter = load(self.name)
        except InvalidInputError as exc:
            raise _Failed(str(exc)) from None
        if adapter.name != self.name:
            raise _Failed(f"the entry point is named {self.name!r} but its Adapter calls itself {adapter.name!r}")
        return adapter

    def own_code(self) -> None:
        package = next(ep for ep in installed() if ep.name == self.name).module.partition(".")[0]
        for what, run in (
            ("list_tools", lambda: self.list_tools(self.off)),
            ("invoke", lambda: self.invoke(self.off, LIST_INTENTS, {})),
        ):
            if not _runs_code_of(package, run):
                raise _Failed(f"{what} never ran code of {package}, the package of the entry point {self.name!r}")

    def described(self, adapter: Adapter) -> None:
        if not isinstance(adapter.description, str) or not adapter.description.strip():
            raise _Failed("the Adapter has no description for agent-il plugins to show")

    def transports(self, adapter: Adapter) -> None:
        transports = adapter.transports
        if not isinstance(transports, tuple) or not all(isinstance(t, str) and t.strip() for t in transports):
            raise _Failed(f"transports must be a tuple of names, got {transports!r}")
        if len(set(transports)) != len(transports):
            raise _Failed(f"transports repeat a name: {transports!r}")
        if adapter.serve is None and transports:
            raise _Failed(f"transports {transports!r} are given but there is no serve to run them")
        if adapter.serve is not None and not transports:
            raise _Failed("serve is given but no transport, so agent-il serve could never run it")
        if adapter.serve is not None and not callable(adapter.serve):
            raise _Failed(f"serve is a {type(adapter.serve).__name__}, not a callable")

    def exposed(self) -> None:
        for tools, learning in ((self.off, "off, inbox off"), (self.review, "off"), (self.on, "on")):
            try:
                names = list(self.list_tools(tools))
            except Exception as exc:
                raise _Failed(f"list_tools raised {type(exc).__name__}: {exc}") from exc
            expected = [s.name for s in tools.specs()]
            if sorted(names, key=str) != sorted(expected):
                raise _Failed(f"with learning {learning} the framework exposes {names}, the surface offers {expected}")

    def read_results(self) -> None:
        samples = read_samples(self.text)
        for spec in (s for s in self.off.specs() if s.read_only):
            if spec.name not in samples:
                raise _Failed(f"no sample arguments for the read tool {spec.name!r}: add them to agent_il.tools.checks")
            for arguments in samples[spec.name]:
                want = self.off.call(spec.name, arguments).model_dump(mode="json")
                got = self.call(self.off, spec.name, arguments)
                if isinstance(got, str):
                    raise _Failed(f"{spec.name}({_show(arguments)}) was refused: {_QUOTE.repr(got)}")
                if difference := _difference(got, want):
                    raise _Failed(f"{spec.name}({_show(arguments)}) differs from the surface's result: {difference}")

    def refused(self, tools: IntentTools, cases: list[Refusal]) -> None:
        if problems := self.refusal_problems(tools, cases):
            raise _Failed(_lines(problems))

    def refusal_problems(self, tools: IntentTools, cases: list[Refusal]) -> list[str]:
        problems = []
        for case in cases:
            try:
                got = self.call(tools, case.tool, case.arguments)
            except _Failed as exc:
                problems.append(str(exc))
                continue
            where, quoted = f"{case.tool}({_show(case.arguments)})", _QUOTE.repr(got)
            if not isinstance(got, str):
                problems.append(f"{where} was accepted; it must be refused, naming {case.argument!r}")
            elif case.secret.casefold() in got.casefold():
                problems.append(f"{where}: the refusal echoes the caller's value: {quoted}")
            elif not re.search(rf"(?<![A-Za-z0-9_]){re.escape(case.argument)}(?![A-Za-z0-9_])", got):
                problems.append(f"{where}: the refusal does not name {case.argument!r}: {quoted}")
            elif case.mention is not None and case.mention not in got:
                problems.append(f"{where}: the refusal does not give the limit {case.mention}: {quoted}")
        return problems

    def unchanged(self, before: dict[str, Any], how: str) -> None:
        after = self.state()
        if after != before or CHECK_LABEL in self.learner.labels:
            raise _Failed(f"{how}, yet the workspace changed: {_difference(after, before) or CHECK_LABEL + ' learned'}")

    def learning_off(self) -> None:
        before = self.state()
        got = self.call(self.off, LEARN_INTENT, {"label": CHECK_LABEL, "examples": EXAMPLES})
        if not isinstance(got, str):
            raise _Failed(f"learn_intent was accepted with learning off: {_QUOTE.repr(got)}")
        self.unchanged(before, "learn_intent was refused with learning off")

    def learning_refusals(self) -> None:
        before = self.state()
        problems = self.refusal_problems(self.on, LEARN_REFUSALS)
        try:
            self.unchanged(before, "all were invalid")
        except _Failed as exc:
            problems.append(str(exc))
        if problems:
            raise _Failed(_lines(problems))

    def correction_refusals(self) -> None:
        before, waiting = self.state(), self.learner.inbox.corrections.ids()
        problems = [
            f"learning {mode}: {p}"
            for tools, mode in ((self.review, "off"), (self.on, "on"))
            for p in self.refusal_problems(tools, correction_refusals(self.learner.labels[0]))
        ]
        try:
            self.unchanged(before, "all were invalid")
        except _Failed as exc:
            problems.append(str(exc))
        if (queued := self.learner.inbox.corrections.ids() - waiting) and not problems:
            problems.append(f"all were invalid, yet {len(queued)} correction(s) were queued for review")
        self.learner.inbox.corrections.drop(sorted(queued))
        if problems:
            raise _Failed(_lines(problems))

    def correction_queued(self) -> None:
        """With learning off, a valid correction is queued for review, not learned, and the
        framework returns the surface's result (the same correction waits once, under one id)."""
        before, waiting = self.state(), self.learner.inbox.corrections.ids()
        arguments = {"text": CORRECTION, "label": self.learner.labels[0]}
        try:
            got = self.call(self.review, CORRECT_INTENT, arguments)
            if isinstance(got, str):
                raise _Failed(f"correct_intent({_show(arguments)}) was refused with learning off: {_QUOTE.repr(got)}")
            want = self.review.call(CORRECT_INTENT, arguments).model_dump(mode="json")
            if difference := _difference(got, want):
                raise _Failed(f"correct_intent({_show(arguments)}) differs from the surface's result: {difference}")
            if got.get("status") != "queued":
                raise _Failed(f"with learning off correct_intent must queue the correction, got {_QUOTE.repr(got)}")
            self.unchanged(before, "correct_intent only queues with learning off")
        finally:
            self.learner.inbox.corrections.drop(sorted(self.learner.inbox.corrections.ids() - waiting))

    def covered(self) -> None:
        unchecked = sorted(set(SPECS) - {CLASSIFY_INTENT, LIST_INTENTS, CORRECT_INTENT, LEARN_INTENT})
        if unchecked:
            raise _Failed(f"agent_il.tools.checks has no checks for {', '.join(unchecked)}: add them there")


def check_adapter(
    name: str,
    learner: IntentLearner,
    list_tools: ListTools,
    invoke: Invoke,
    *,
    text: str = "i need to pay my water bill",
) -> None:
    """Check the adapter registered as ``name`` through its framework; raise
    :class:`AdapterCheckError` listing every check it fails.

    ``learner`` must know at least one intent. Valid calls change nothing (the correction the checks
    queue for review is taken out again); a broken adapter may learn the label
    ``zz_adapter_contract_check`` through it, so give it a workspace that is a copy.
    ``text`` is classified to compare results (under 64 characters, the checks' text limit).

    The checks:

    - *registered*: an entry point ``name`` in the ``agent_il.adapters`` group, listed without error
      by ``agent-il plugins``, loads to an :class:`Adapter` of the same name;
    - *own code*: ``list_tools`` and ``invoke`` run code of the package that holds that entry point,
      so the callables exercise this adapter (they could still bypass it: review them);
    - *description*: the Adapter describes itself;
    - *transports*: transports are distinct names, given exactly when there is a ``serve``;
    - *tools exposed*: the framework exposes exactly the surface's tools: ``learn_intent`` only with
      learning allowed, ``correct_intent`` unless learning is off and the inbox too;
    - *read results*: each read tool's result through the framework equals the surface's own result
      (same limits, so an adapter that ignores the operator's limits or an argument fails);
    - *refusals*: unknown arguments, wrong types and over-limit texts are refused with a message that
      names the field (and the limit) and does not contain the caller's value;
    - *learning off*: ``learn_intent`` is refused, and nothing is learned, when learning is off;
    - *learning refusals*: with learning on, invalid ``learn_intent`` calls are refused the same way,
      and nothing is learned;
    - *correction refusals*: invalid ``correct_intent`` calls (a label that is no known intent among
      them) are refused the same way, learning on or off, and nothing is learned or queued;
    - *correction queued*: with learning off, a valid ``correct_intent`` is queued for review, not
      learned, and its result through the framework equals the surface's;
    - *every tool checked*: the surface has no tool these checks do not cover (so a new one cannot
      pass unchecked).
    """
    if not learner.labels:
        raise InvalidInputError("check_adapter needs a learner that knows at least one intent")
    if len(text) > LIMITS.max_text_chars:
        raise InvalidInputError(f"text must be at most {LIMITS.max_text_chars} characters")
    run = _Run(name, learner, list_tools, invoke, text)
    adapter = run.check("registered", run.registered)
    if adapter is not None:
        run.check("own code", run.own_code)
        run.check("description", partial(run.described, adapter))
        run.check("transports", partial(run.transports, adapter))
    run.check("tools exposed", run.exposed)
    run.check("read results", run.read_results)
    run.check("refusals", lambda: run.refused(run.off, read_refusals(text)))
    run.check("learning off", run.learning_off)
    run.check("learning refusals", run.learning_refusals)
    run.check("correction refusals", run.correction_refusals)
    run.check("correction queued", run.correction_queued)
    run.check("every tool checked", run.covered)
    if run.failures:
        raise AdapterCheckError(name, run.failures)
