"""What every command shares: the option types, where the workspace lives, opening it, the error
guard and JSON output. Imports only Typer and the library's errors, so that ``--help`` stays fast;
the learning stack is imported by the functions that need it."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from agent_il.errors import AgentILError

if TYPE_CHECKING:
    from agent_il.data import Dataset
    from agent_il.learner import IntentLearner

DEFAULT_HOME = Path(".agent-il")

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="AGENT_IL_HOME",
        help="Workspace directory (default: $AGENT_IL_HOME, else ./.agent-il).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
Model = Annotated[
    str | None,
    typer.Option("--model", help="Expected encoder (name or local path); refused if the workspace uses another."),
]
Format = Annotated[str | None, typer.Option("--format", help="csv, tsv, jsonl or json (default: from the extension).")]
TextCol = Annotated[
    str | None, typer.Option("--text-col", help="Column holding the text (default: text, utterance, query...).")
]
LabelCol = Annotated[
    str | None, typer.Option("--label-col", help="Column holding the label (default: label, intent, category...).")
]
Split = Annotated[
    str | None, typer.Option("--split", help="For a JSON object of splits (CLINC150's data_full.json): which one.")
]

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Turn the library's deliberate errors into one line on stderr and exit status 1, so that a
    user sees the message, not a traceback (anything else is a bug and keeps its traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentILError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; the workspace is as it was before the command", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit(obj: Any) -> None:
    """``--json`` output: one indented document on stdout, non-ASCII text kept readable."""
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


@dataclass(frozen=True)
class Where:
    """Where the workspace lives, as the root options (or their variables) say: a directory
    (each command's ``--home``), or the workspace ``workspace`` on the Chroma server ``chroma_url``."""

    chroma_url: str | None = None
    workspace: str = "default"
    tenant: str | None = None
    database: str | None = None
    wait: float = 0.0

    def location(self, home: Path | None) -> dict[str, Any]:
        """The arguments that name the workspace, both to agent_il.storage.open_workspace and to
        IntentLearner.open, so the two always agree (the server wins when there is one)."""
        return {
            "path": home_path(home),
            "chroma_url": self.chroma_url or None,  # AGENT_IL_CHROMA_URL= (empty) means a directory
            "name": self.workspace,
            "tenant": self.tenant,
            "database": self.database,
            "wait": self.wait,
        }

    def flag(self, home: Path | None) -> str:
        """How the user named the workspace, to repeat it in a hint."""
        return f"--workspace {self.workspace}" if self.chroma_url else f"--home {home_path(home)}"


def where(ctx: typer.Context) -> Where:
    """This invocation's :class:`Where`, which the root callback put on ``ctx.obj``; the defaults
    when a command runs without that callback (a Typer app that mounts the commands elsewhere)."""
    return ctx.find_object(Where) or Where()


def home_path(home: Path | None) -> Path:
    """``--home`` (or $AGENT_IL_HOME, which Typer reads into it), else ./.agent-il."""
    return (home or DEFAULT_HOME).expanduser()


def workspace_exists(ctx: typer.Context, home: Path | None) -> tuple[bool, str]:
    """Whether the workspace the options name exists, and where it is (for the message either
    way); agent_il.storage.open_workspace chooses the backend, nothing is locked or created."""
    from agent_il.storage import open_workspace

    ws = open_workspace(**where(ctx).location(home))
    try:
        return ws.exists(), ws.location
    finally:
        ws.close()


def open_learner(
    ctx: typer.Context, home: Path | None, model: str | None = None, create: bool = False, **settings: Any
) -> IntentLearner:
    """The workspace at --home or on the server; ``create`` makes it (with ``settings``) if new.
    Without ``create`` a missing workspace is an error that says how to make one."""
    from agent_il.learner import IntentLearner

    at = where(ctx)
    if not create:
        exists, location = workspace_exists(ctx, home)
        if not exists:
            from agent_il.errors import WorkspaceError

            raise WorkspaceError(f"no workspace at {location}; create one with: agent-il init {at.flag(home)}")
    return IntentLearner.open(**at.location(home), model=model, create=create, **settings)


def read_file(
    path: Path, fmt: str | None, text_col: str | None, label_col: str | None, split: str | None, labelled: bool
) -> Dataset:
    """A data file, as the shared --format/--text-col/--label-col/--split options describe it."""
    from agent_il import data

    return data.read(path, fmt=fmt, text_col=text_col, label_col=label_col, split=split, labelled=labelled)
