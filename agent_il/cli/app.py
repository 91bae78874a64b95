"""Commands of ``agent-il``: parse, call the core, print. No learning logic lives here."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from agent_il.errors import AgentILError

if TYPE_CHECKING:
    from agent_il.learner import IntentLearner
    from agent_il.workspace import Workspace

app = typer.Typer(
    name="agent-il",
    help="Teach an agent new intents from labelled examples, without forgetting the old ones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
tasks_app = typer.Typer(help="Inspect the tasks (one per learn) a workspace has learned.", no_args_is_help=True)
snapshot_app = typer.Typer(help="Save, list, restore and delete named copies of a workspace.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(snapshot_app, name="snapshot")

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
    """Turn the library's deliberate errors into one line on stderr and exit status 1."""

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
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False))


@dataclass
class Where:
    """Where the workspace lives: set by the options before the command (or their variables)."""

    chroma_url: str | None = None
    workspace: str = "default"
    tenant: str | None = None
    database: str | None = None
    wait: float = 0.0


WHERE = Where()


@app.callback()
def where(
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            envvar="AGENT_IL_CHROMA_URL",
            help="Use a workspace on this Chroma server (http://HOST:PORT), shared by every agent that "
            "names it, instead of the directory --home.",
        ),
    ] = None,
    workspace: Annotated[
        str, typer.Option("--workspace", envvar="AGENT_IL_WORKSPACE", help="Workspace name on the Chroma server.")
    ] = "default",
    tenant: Annotated[str | None, typer.Option("--tenant", envvar="AGENT_IL_TENANT", help="Chroma tenant.")] = None,
    database: Annotated[
        str | None, typer.Option("--database", envvar="AGENT_IL_DATABASE", help="Chroma database.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", envvar="AGENT_IL_WAIT", help="Seconds to wait for a local workspace another process has open."
        ),
    ] = 0.0,
) -> None:
    """Teach an agent new intents from labelled examples, without forgetting the old ones.

    Workspaces are local directories (`--home`) or live on a Chroma server
    (`agent-il --chroma-url http://127.0.0.1:8000 --workspace support learn FILE`).
    """
    WHERE.__init__(chroma_url, workspace, tenant, database, wait)  # type: ignore[misc]


def home_path(home: Path | None) -> Path:
    return (home or DEFAULT_HOME).expanduser()


def workspace_at(home: Path | None) -> Workspace:
    if WHERE.chroma_url:
        from agent_il.server import ServerWorkspace

        return ServerWorkspace(WHERE.chroma_url, WHERE.workspace, *_tenancy())
    from agent_il.workspace import LocalWorkspace

    return LocalWorkspace(home_path(home), wait=WHERE.wait)


def _tenancy() -> tuple[str, str]:
    from agent_il.server import DEFAULT_DATABASE, DEFAULT_TENANT

    return WHERE.tenant or DEFAULT_TENANT, WHERE.database or DEFAULT_DATABASE


def open_learner(home: Path | None, model: str | None = None, create: bool = False, **settings: Any) -> IntentLearner:
    """The workspace at --home or on the server; ``create`` makes it (with ``settings``) if new."""
    from agent_il.learner import IntentLearner

    ws = workspace_at(home)
    if not create and not ws.exists():
        from agent_il.errors import WorkspaceError

        where = f"--home {home_path(home)}" if not WHERE.chroma_url else f"--workspace {WHERE.workspace}"
        raise WorkspaceError(f"no workspace at {ws.location}; create one with: agent-il init {where}")
    if WHERE.chroma_url:
        tenant, database = _tenancy()
        return IntentLearner.open(
            chroma_url=WHERE.chroma_url,
            name=WHERE.workspace,
            tenant=tenant,
            database=database,
            model=model,
            create=create,
            **settings,
        )
    return IntentLearner.open(home_path(home), wait=WHERE.wait, model=model, create=create, **settings)


def read_file(
    path: Path, fmt: str | None, text_col: str | None, label_col: str | None, split: str | None, labelled: bool
):
    from agent_il import data

    return data.read(path, fmt=fmt, text_col=text_col, label_col=label_col, split=split, labelled=labelled)


# --------------------------------------------------------------------------- init / status
@app.command()
@guarded
def init(
    home: Home = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Encoder: a sentence-transformers name or local path (default: bundled all-MiniLM-L6-v2)."
        ),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Learning rule: ridge (default), ewc-replay, replay, ewc or naive.")
    ] = None,
    memory_per_class: Annotated[
        int | None, typer.Option("--memory-per-class", help="Exemplars kept per class (default 20).")
    ] = None,
    memory_total: Annotated[
        int | None, typer.Option("--memory-total", help="Or: exemplars kept in all, shared by the classes.")
    ] = None,
    selection: Annotated[
        str, typer.Option("--selection", help="Which exemplars to keep: herding or random.")
    ] = "herding",
    auto_snapshots: Annotated[
        int, typer.Option("--auto-snapshots", help="Automatic pre-learn snapshots to keep (0: none).")
    ] = 10,
    as_json: Json = False,
) -> None:
    """Create a workspace.

    Example: `agent-il init --home ./kb --strategy ewc-replay --memory-per-class 20`
    """
    from agent_il.encoder import Encoder
    from agent_il.errors import WorkspaceError

    ws = workspace_at(home)
    if ws.exists():
        raise WorkspaceError(f"{ws.location} is already a workspace; use it, or choose another one")
    encoder = Encoder(model)
    _ = encoder.dim  # a model that cannot load fails here, before anything is created
    learner = open_learner(
        home,
        create=True,
        encoder=encoder,
        strategy=strategy,
        memory_per_class=memory_per_class,
        memory_total=memory_total,
        selection=selection,
        auto_snapshots=auto_snapshots,
    )
    status = learner.status()
    if as_json:
        emit(status)
    else:
        typer.echo(f"Created workspace {status['path']} (model {status['model']}, strategy {status['strategy']}).")
        typer.echo("Next: agent-il learn FILE --task NAME")


@app.command()
@guarded
def status(home: Home = None, as_json: Json = False) -> None:
    """Show a workspace: model, strategy, classes, tasks, exemplars, snapshots, size on disk.

    Example: `agent-il status --home ./kb`
    """
    from agent_il.cli import render

    info = open_learner(home).status()
    emit(info) if as_json else render.status(info)


# --------------------------------------------------------------------------- learn / predict
@app.command()
@guarded
def learn(
    file: Annotated[
        Path, typer.Argument(help="Labelled examples: CSV/TSV with a header, JSONL, or JSON.", show_default=False)
    ],
    task: Annotated[str | None, typer.Option("--task", help="Name of this task (default: task-N).")] = None,
    text_col: TextCol = None,
    label_col: LabelCol = None,
    fmt: Format = None,
    split: Split = None,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Fraction of each class kept aside as this task's test slice.")
    ] = 0.0,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Learn the intents in FILE as one task, and show what it changed and what it forgot.

    New labels become new intents; known labels get more examples. A snapshot is taken first,
    so `agent-il rollback` undoes it.

    Example: `agent-il learn examples/data/quickstart/banking.csv --task banking --holdout 0.2`
    """
    from agent_il import validation
    from agent_il.cli import render

    validation.fraction(holdout, "holdout")  # every argument is checked before the workspace is opened
    validation.task_name(task)
    dataset = read_file(file, fmt, text_col, label_col, split, labelled=True)
    learner = open_learner(home, model)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        report = learner.learn(dataset.texts, dataset.labels, task=task, holdout=holdout, on_progress=advance)
    emit(report.to_dict()) if as_json else render.learn_report(report)


@app.command()
@guarded
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Classify every text of this file instead.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many labels to list per text.")] = 3,
    evidence: Annotated[int, typer.Option("--evidence", min=0, help="Nearest stored examples to show per text.")] = 2,
    inbox: Annotated[bool, typer.Option("--inbox/--no-inbox", help="Keep texts rejected as unknown.")] = True,
    text_col: TextCol = None,
    fmt: Format = None,
    split: Split = None,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Classify texts: best intent, confidence, top-k, and the stored examples it rests on.

    Example: `agent-il predict "i was charged twice" "where is my card" --top-k 3`
    """
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    if bool(texts) == (file is not None):
        raise InvalidInputError("give texts to classify, or --file FILE, not both")
    if file is not None:
        texts = read_file(file, fmt, text_col, None, split, labelled=False).texts
    assert texts is not None
    preds = open_learner(home, model).predict(texts, k=top_k, evidence=evidence, inbox=inbox)
    if as_json:
        emit({"predictions": [render.prediction_dict(t, p) for t, p in zip(texts, preds)]})
    else:
        render.predictions(texts, preds)


# --------------------------------------------------------------------------- evaluate
@app.command()
@guarded
def evaluate(
    file: Annotated[
        Path | None, typer.Argument(help="Labelled test file (default: the held-out slices).", show_default=False)
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of the accuracy matrix and curve here.")
    ] = None,
    text_col: TextCol = None,
    label_col: LabelCol = None,
    fmt: Format = None,
    split: Split = None,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Measure accuracy and forgetting.

    Without FILE: the accuracy matrix over every task's held-out slice (learn with `--holdout`),
    final accuracy, average forgetting and backward transfer. With FILE: accuracy overall, per
    class and per task on it.

    Example: `agent-il evaluate --plot forgetting.png`, or `agent-il evaluate test.csv --json`
    """
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    if plot is not None and plot.suffix.lower() != ".png":
        raise InvalidInputError(f"--plot writes PNG; give a path ending in .png, not {plot}")
    learner = open_learner(home, model)
    if file is not None:
        if plot is not None:
            raise InvalidInputError("--plot draws the held-out accuracy matrix; use it without FILE")
        dataset = read_file(file, fmt, text_col, label_col, split, labelled=True)
        result = learner.evaluate(dataset.texts, dataset.labels)
        emit(result.to_dict()) if as_json else render.file_evaluation(result)
        return
    matrix = learner.accuracy_matrix()
    names = {t.id: t.name for t in learner.tasks}
    if not matrix.rows:
        raise InvalidInputError("no held-out slices yet: learn with --holdout 0.1, or pass a labelled FILE")
    if plot is not None:
        from agent_il.plots import accuracy_figure

        accuracy_figure(matrix, names, plot)
    summary = {**matrix.summary(), "task_names": {str(k): v for k, v in names.items()}}
    emit(summary) if as_json else render.matrix(summary, names, plot)


# --------------------------------------------------------------------------- tasks
@tasks_app.command("list")
@guarded
def tasks_list(home: Home = None, as_json: Json = False) -> None:
    """List the tasks, oldest first.

    Example: `agent-il tasks list`
    """
    from agent_il.cli import render

    tasks = open_learner(home).tasks
    emit({"tasks": [t.__dict__ for t in tasks]}) if as_json else render.task_table(tasks)


@tasks_app.command("show")
@guarded
def tasks_show(
    task: Annotated[str, typer.Argument(help="Task id or name (the newest task of that name).", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show one task: its classes, their example and exemplar counts, its held-out accuracy.

    Example: `agent-il tasks show billing`
    """
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    learner = open_learner(home)
    found = [t for t in learner.tasks if str(t.id) == task or t.name == task]
    if not found:
        known = ", ".join(f"{t.id}:{t.name}" for t in learner.tasks) or "none yet"
        raise InvalidInputError(f"no task {task!r}; tasks are: {known}")
    t = found[-1]
    counts = learner.exemplar_counts()
    rows = learner.accuracy_matrix().rows
    detail = {
        **t.__dict__,
        "exemplars": {y: counts.get(y, 0) for y in t.classes},
        "holdout_accuracy": [{"after_task": a, "accuracy": acc[t.id]} for a, acc in rows if t.id in acc],
    }
    emit(detail) if as_json else render.task_detail(detail)


# --------------------------------------------------------------------------- snapshots
@snapshot_app.command("create")
@guarded
def snapshot_create(
    name: Annotated[
        str | None, typer.Argument(help="Letters, digits, '.', '_', '-' (default: a timestamp).", show_default=False)
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Save the workspace as it is now: head, EWC state, labels, tasks and exemplar memory.

    Example: `agent-il snapshot create before-release`
    """
    info = open_learner(home).snapshot(name)
    emit(info.to_dict()) if as_json else typer.echo(
        f"Saved snapshot {info.name} ({info.classes} classes, {info.tasks} tasks)."
    )


@snapshot_app.command("list")
@guarded
def snapshot_list(home: Home = None, as_json: Json = False) -> None:
    """List snapshots, oldest first (auto-* are taken before each learn).

    Example: `agent-il snapshot list`
    """
    from agent_il.cli import render

    snaps = open_learner(home).list_snapshots()
    emit({"snapshots": [s.to_dict() for s in snaps]}) if as_json else render.snapshot_table(snaps)


@snapshot_app.command("restore")
@guarded
def snapshot_restore(
    name: Annotated[str, typer.Argument(help="Snapshot to restore.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Bring back a snapshot, all of it or nothing (the current state is snapshotted first).

    Example: `agent-il snapshot restore before-release`
    """
    info = open_learner(home).restore(name)
    emit(info.to_dict()) if as_json else typer.echo(
        f"Restored {info.name}: {info.classes} classes, {info.tasks} tasks."
    )


@snapshot_app.command("delete")
@guarded
def snapshot_delete(
    name: Annotated[str, typer.Argument(help="Snapshot to delete.", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Delete a snapshot.

    Example: `agent-il snapshot delete before-release`
    """
    open_learner(home).delete_snapshot(name)
    emit({"deleted": name}) if as_json else typer.echo(f"Deleted snapshot {name}.")


@app.command()
@guarded
def rollback(home: Home = None, as_json: Json = False) -> None:
    """Undo the last learn: restore the state from just before it.

    Run it again to go further back (one step per automatic snapshot kept).

    Example: `agent-il rollback`
    """
    info = open_learner(home).rollback()
    if as_json:
        emit({"restored": info.to_dict()})
    else:
        typer.echo(f"Rolled back to the state before the last learn: {info.classes} classes, {info.tasks} tasks.")


@app.command()
@guarded
def doctor(home: Home = None, as_json: Json = False) -> None:
    """Check that head, metadata, memory and snapshots agree; clean what interrupted commands left.

    Exit status 1 if a problem remains. On a Chroma server, leftovers are cleaned once 15 minutes
    old, so that writes in progress elsewhere are left alone.

    Example: `agent-il doctor --home ./kb`
    """
    found = open_learner(home).doctor()
    if as_json:
        emit(found.to_dict())
    else:
        from agent_il.cli import render

        render.diagnosis(found)
    if not found.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- bench
@app.command()
@guarded
def bench(
    train: Annotated[
        Path,
        typer.Argument(
            help="Labelled training file (CLINC150's data_full.json brings its test split).", show_default=False
        ),
    ],
    test: Annotated[
        Path | None, typer.Option("--test", help="Labelled test file (default: TRAIN's 'test' split).")
    ] = None,
    tasks: Annotated[
        int | None, typer.Option("--tasks", help="Number of tasks (default: most tasks of >= 10 classes).")
    ] = None,
    seeds: Annotated[
        list[str] | None, typer.Option("--seeds", help="Seeds: --seeds 0,1,2 or repeated (default 0 1 2).")
    ] = None,
    strategy_names: Annotated[
        list[str] | None, typer.Option("--strategies", help="Strategies to compare (default: all, plus joint).")
    ] = None,
    memory_per_class: Annotated[
        int, typer.Option("--memory-per-class", min=1, help="Exemplar budget for every strategy.")
    ] = 20,
    quick: Annotated[bool, typer.Option("--quick", help="One seed and the first 3 tasks only: a smoke run.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for results.json, report.md and plots.")] = Path(
        "bench-results"
    ),
    model: Annotated[str | None, typer.Option("--model", help="Encoder (default: bundled all-MiniLM-L6-v2).")] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Embedding cache (default: ~/.cache/agent-il).", show_default=False),
    ] = None,
    text_col: TextCol = None,
    label_col: LabelCol = None,
    fmt: Format = None,
    as_json: Json = False,
) -> None:
    """Compare every strategy on the class-incremental protocol: accuracy, forgetting, learn time.

    Classes are split into equal tasks in a seeded order; after each task, the test examples of
    every class seen so far are classified with no task id. Embeddings are cached on disk, so a
    re-run encodes nothing.

    Example: `agent-il bench examples/data/clinc150/data_full.json --seeds 0,1,2 --out results/clinc150`
    """
    import os

    import numpy as np

    from agent_il import bench as protocol
    from agent_il import data, reports, strategies
    from agent_il.cli import render
    from agent_il.embedding_cache import EmbeddingCache
    from agent_il.encoder import Encoder
    from agent_il.errors import InvalidInputError

    seed_list = _seeds(seeds) if seeds else [0, 1, 2]
    if quick:
        seed_list = seed_list[:1]
    names = [n for item in (strategy_names or []) for n in item.split(",") if n] or [
        *strategies.REGISTRY,
        protocol.REFERENCE,
    ]
    if test is None and "test" not in data.splits(train, fmt):
        raise InvalidInputError(f"{train} has no 'test' split; give --test FILE")
    train_set = data.read(
        train, fmt=fmt, text_col=text_col, label_col=label_col, split="train" if test is None else None
    )
    test_set = data.read(
        test or train, fmt=fmt, text_col=text_col, label_col=label_col, split="test" if test is None else None
    )
    n_classes = len(set(train_set.labels or []))
    n_tasks = tasks or protocol.default_task_count(n_classes)
    encoder = Encoder(model)
    cache_root = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agent-il"
    cache = EmbeddingCache(cache_root / f"{encoder.model_id.replace('/', '_')}.sqlite", encoder.dim)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        x_train = encoder.encode(train_set.texts, cache=cache, on_progress=advance)
        x_test = encoder.encode(test_set.texts, cache=cache, on_progress=advance)
    tasks_run = min(3, n_tasks) if quick else n_tasks
    steps = len(names) * len(seed_list) * tasks_run
    with render.progress(enabled=not as_json, what="Learning") as advance:
        done = [0]

        def tick() -> None:
            done[0] += 1
            if advance:
                advance(done[0], steps)

        result = protocol.run(
            protocol.Split(x_train, np.array(train_set.labels)),
            protocol.Split(x_test, np.array(test_set.labels)),
            names=names,
            n_tasks=n_tasks,
            seeds=seed_list,
            memory_per_class=memory_per_class,
            limit_tasks=tasks_run,
            on_task=tick,
        )
    title = f"Class-incremental benchmark: {train.name}"
    extra = {
        "model": encoder.model_id,
        "train": str(train),
        "test": str(test or train),
        "encoded_texts": encoder.encoded_count,  # 0 when every embedding came from the cache
    }
    oos = None
    if test is None and not quick and "oos_test" in data.splits(train, fmt):  # CLINC150: rejection figures too
        encode = functools.partial(encoder.encode, cache=cache)
        read = functools.partial(data.read, train, fmt=fmt, text_col=text_col, label_col=label_col)
        oos = _oos_figures(read, encode, train_set.labels, test_set.labels, x_train, x_test, n_tasks)
    written = reports.write(result, out, title, extra, oos=oos)
    if as_json:
        emit(written)
    else:
        render.bench_table(written, out)


def _oos_figures(
    read: Callable[..., Any],
    encode: Callable[[list[str]], Any],
    train_labels: list[str],
    test_labels: list[str],
    x_train: Any,
    x_test: Any,
    n_tasks: int,
) -> dict[str, Any]:
    """Out-of-scope rejection of the default head, learned in one go and task by task (seed 0)."""
    import numpy as np

    from agent_il import oos_bench
    from agent_il.bench import task_order

    splits = {"train": (x_train, np.array(train_labels)), "test": (x_test, np.array(test_labels))}
    for name in ("val", "oos_test"):
        try:
            rows = read(split=name)
        except AgentILError:  # no such split
            continue
        splits[name] = (encode(rows.texts), np.array(rows.labels))
    return {
        "joint": oos_bench.measure(splits, [sorted(set(train_labels))]),
        "incremental": oos_bench.measure(splits, task_order(splits["train"][1], n_tasks, seed=0)),
    }


def _seeds(values: list[str]) -> list[int]:
    from agent_il.errors import InvalidInputError

    try:
        return [int(s) for v in values for s in v.split(",") if s.strip()]
    except ValueError:
        raise InvalidInputError(f"--seeds takes whole numbers, got {' '.join(values)}") from None


from agent_il.cli.plugins import plugins_app  # noqa: E402  (it uses the helpers above)

app.add_typer(plugins_app)
from agent_il.cli.knowledge import register  # noqa: E402  (calibrate, intents, inbox, discover)

register(app)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
