"""What every command shares: the option types, where the workspace lives, opening it, the error
guard and JSON output. Imports only Typer and the library's errors, so that ``--help`` stays fast;
the learning stack is imported by the functions that need it."""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.exceptions import TyperException

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
Backend = Annotated[
    str,
    typer.Option(
        "--backend",
        help="How the encoder runs: auto (ONNX Runtime on the CPU, torch on CUDA), torch, onnx or onnx-int8.",
    ),
]
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
ImportFormat = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="csv, tsv, jsonl, json, or an intent framework's: rasa (nlu.yml or a data/ directory), dialogflow "
        "(ES agent zip or directory), lex (V2 bot zip), semantic-router (route config). Default: detected.",
    ),
]
Language = Annotated[
    str | None, typer.Option("--language", help="Dialogflow: the language to read when the agent has several.")
]
Locale = Annotated[str | None, typer.Option("--locale", help="Lex: the locale to read when the bot has several.")]
KeepFallback = Annotated[
    bool,
    typer.Option(
        "--keep-fallback",
        help="Learn fallback / out-of-scope intents (out_of_scope, Default Fallback Intent, oos...) as intents, "
        "instead of fitting the unknown threshold on them.",
    ),
]
Split = Annotated[
    str | None, typer.Option("--split", help="For a JSON object of splits (CLINC150's data_full.json): which one.")
]

F = TypeVar("F", bound=Callable[..., Any])


# Set by the root option --debug (or $AGENT_IL_DEBUG, read here for a Typer app that mounts the
# commands without that callback): show the traceback under the one-line message.
_debug = os.environ.get("AGENT_IL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF) that name a kind of fault.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 3, 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def set_debug(on: bool) -> None:
    """Whether :func:`guarded` prints the traceback after the one-line message (the --debug option)."""
    global _debug
    _debug = bool(on)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _passes_through(exc: BaseException) -> bool:
    """Exits and Click's own errors (usage, abort), which Click prints and exits on by itself."""
    if isinstance(exc, (SystemExit, KeyboardInterrupt, typer.Exit, typer.Abort, TyperException)):
        return True
    click = sys.modules.get("click")
    return click is not None and isinstance(exc, (click.exceptions.ClickException, click.exceptions.Exit))


def _server_url() -> str:
    ctx = _click_context()
    at = ctx.find_object(Where) if ctx is not None else None
    url = (at.chroma_url if at is not None else None) or os.environ.get("AGENT_IL_CHROMA_URL")
    return url or "the configured URL"


_current: list[typer.Context] = []  # the contexts of the commands running now (innermost last)


def _click_context() -> typer.Context | None:
    return _current[-1] if _current else None


LOW_DISK = 16 * 2**20  # bytes: less free space than this where the workspace lives is a full disk


def _low_disk() -> bool:
    """Whether the disk of the running command's workspace (--home) is (nearly) full: a store
    that fails without saying why has most likely run out of space there."""
    ctx = _click_context()
    at = ctx.find_object(Where) if ctx is not None else None
    if at is not None and at.chroma_url:
        return False  # the server's disk is not ours to measure
    home = ctx.params.get("home") if ctx is not None else None
    path = home_path(home if isinstance(home, Path) else None).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < LOW_DISK
    except OSError:
        return False


def _disk_full(where: str) -> str:
    return (
        f"disk full{where}: nothing was committed, the workspace is as it was before the command; "
        "free some space and run it again"
    )


def _denied(what: str, where: str) -> str:
    return (
        f"{what}{where}: nothing was committed; make the workspace writable (or use another --home) "
        "and run the command again"
    )


def _os_error(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    reason = exc.strerror or _one_line(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return _disk_full(f" (writing {exc.filename})" if exc.filename else "")
    if exc.errno == errno.EROFS:
        return _denied("read-only file system", where)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return _denied("permission denied", where)
    if isinstance(exc, ConnectionError):
        return _lost_server(exc)
    return f"{reason}{where}"


def _lost_server(exc: BaseException) -> str:
    return (
        f"lost the Chroma server at {_server_url()}: {_one_line(exc).rstrip('.') or type(exc).__name__}; "
        "a commit that "
        "did not finish is not seen by anyone; start the server again and rerun the command "
        "(agent-il doctor removes what the broken write left)"
    )


def _damaged(detail: str) -> str:
    return f"damaged file: {detail}; `agent-il doctor` lists what is damaged, `agent-il doctor --repair` repairs it"


def _sqlite_error(exc: Exception) -> str:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    detail = _one_line(exc)
    if code == _SQLITE_FULL:
        return _disk_full("")
    if code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN):
        return _denied(f"cannot write the database ({detail})", "")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return f"the database is busy ({detail}); wait for the other process and run the command again"
    if code == _SQLITE_IOERR and _low_disk():
        return _disk_full(f" ({detail})")
    if code == _SQLITE_IOERR:
        return f"disk I/O error on the database ({detail}); check the disk and run the command again"
    return _damaged(detail)


# What Chroma's messages say when a file of its store is damaged (SQLite's, or its vector index's).
_DAMAGED_SIGNS = (
    "malformed",
    "not a database",
    "corrupt",
    "(code: 11)",
    "(code: 26)",
    "error deserializing",
    "eof while parsing",
    "error loading hnsw",
)


def _chroma_error(exc: Exception) -> str:
    """Chroma's own errors, which carry SQLite's or the file system's message as text."""
    detail = _one_line(exc) or type(exc).__name__
    low = detail.lower()
    if any(sign in low for sign in _DAMAGED_SIGNS):
        return _damaged(detail)
    if ("full" in low and ("disk" in low or "database" in low)) or "no space" in low:
        return _disk_full("")
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return _denied(f"cannot write ({detail})", "")
    if _low_disk():  # Chroma often reports a full disk as a failed compaction or flush
        return _disk_full(f" ({detail})")
    return f"Chroma failed: {detail}"


def describe(exc: BaseException) -> str:
    """The one line (after ``error: ``) that names what went wrong, chosen by the kind of error."""
    if isinstance(exc, AgentILError):
        return _one_line(exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    httpx = sys.modules.get("httpx")  # an error of a library is only possible once it is imported
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return _lost_server(exc)
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        return _sqlite_error(exc)
    chroma_errors = sys.modules.get("chromadb.errors")
    if chroma_errors is not None and isinstance(exc, chroma_errors.ChromaError):
        return _chroma_error(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: nothing was committed; try a smaller file"
    text = _one_line(exc)
    return f"internal error ({type(exc).__name__}{': ' + text if text else ''}); run with --debug for the traceback"


def guarded(fn: F) -> F:
    """Every command's error guard: whatever goes wrong prints one line ``error: ...`` on stderr
    (the message chosen by the kind of error: the library's own, disk full, permission, lost
    server, damaged file, anything else) and exits with status 1; with --debug the traceback
    follows the line. Ctrl-C exits 130. Click's usage errors and exits keep their own handling."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Typer passes Click's own Context, which is not an instance of typer.Context
        ctx = next((a for a in (*args, *kwargs.values()) if hasattr(a, "find_object") and hasattr(a, "params")), None)
        if ctx is not None:
            _current.append(ctx)
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            typer.echo("interrupted; the workspace is as it was before the command", err=True)
            raise typer.Exit(130) from None
        except BaseException as exc:
            if _passes_through(exc):
                raise
            try:
                message = describe(exc)
            except Exception:  # never let the guard itself fail
                message = f"internal error ({type(exc).__name__})"
            typer.echo(f"error: {message}", err=True)
            if _debug:
                typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
            raise typer.Exit(1) from None
        finally:
            if ctx is not None:
                _current.remove(ctx)

    wrapper.__guarded__ = True  # type: ignore[attr-defined]
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
