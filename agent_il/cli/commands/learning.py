"""``agent-il learn``, ``predict``, ``evaluate`` and ``tasks list|show``: teach the workspace, use
it, and measure what it learned and forgot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent_il.cli.context import (
    Format,
    Home,
    ImportFormat,
    Json,
    KeepFallback,
    LabelCol,
    Language,
    Locale,
    Model,
    Split,
    TextCol,
    emit,
    guarded,
    open_learner,
    read_file,
)


def register(app: typer.Typer) -> None:
    app.command()(learn)
    app.command()(predict)
    app.command()(evaluate)
    tasks = typer.Typer(help="Inspect the tasks (one per learn) a workspace has learned.", no_args_is_help=True)
    tasks.command("list")(tasks_list)
    tasks.command("show")(tasks_show)
    app.add_typer(tasks, name="tasks")


@guarded
def learn(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Labelled examples: CSV/TSV with a header, JSONL, JSON, or an export of Rasa, Dialogflow ES, "
            "Amazon Lex V2 or semantic-router.",
            show_default=False,
        ),
    ],
    task: Annotated[str | None, typer.Option("--task", help="Name of this task (default: task-N).")] = None,
    text_col: TextCol = None,
    label_col: LabelCol = None,
    fmt: ImportFormat = None,
    split: Split = None,
    language: Language = None,
    locale: Locale = None,
    keep_fallback: KeepFallback = False,
    holdout: Annotated[
        float,
        typer.Option(
            "--holdout", help="Fraction of each class kept aside as this task's test slice (a block, in file order)."
        ),
    ] = 0.0,
    corrections: Annotated[
        bool,
        typer.Option(
            "--corrections",
            help="FILE holds corrections (a text, the known intent it meant): one task feedback:DATE, source=feedback.",
        ),
    ] = False,
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Learn the intents in FILE as one task, and show what it changed and what it forgot.

    New labels become new intents; known labels get more examples. A snapshot is taken first,
    so `agent-il rollback` undoes it. From an intent framework, entity annotations become plain
    text and fallback intents (out_of_scope, Default Fallback Intent, oos) fit the `unknown`
    threshold (`agent-il calibrate`) instead of being learned, unless `--keep-fallback`.

    With `--corrections`, each row is a message the agent got wrong and the known intent it
    meant, learned like `agent-il feedback` (a task named `feedback:DATE`).

    Example: `agent-il learn examples/data/quickstart/banking.csv --task banking --holdout 0.2`,
    or `agent-il learn data/nlu.yml --task rasa`, or `agent-il learn fixes.csv --corrections`
    """
    from agent_il import data, validation
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    validation.holdout(holdout, "--holdout")  # every argument is checked before the workspace is opened
    validation.task_name(task)
    if corrections and (task is not None or holdout):
        raise InvalidInputError(
            "--corrections learns one task named feedback:DATE with no held-out slice; leave out --task and --holdout"
        )
    dataset = data.read(
        file,
        fmt=fmt,
        text_col=text_col,
        label_col=label_col,
        split=split,
        labelled=True,
        max_chars=validation.max_text_chars(),
        language=language,
        locale=locale,
        keep_fallback=keep_fallback,
    )
    if corrections:
        from agent_il.cli.commands.feedback import learn_corrections

        learn_corrections(ctx, dataset, home, model, as_json)
        return
    learner = open_learner(ctx, home, model)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        report, fitted = data.learn_dataset(learner, dataset, task=task, holdout=holdout, on_progress=advance)
    imported = None
    if dataset.fmt in data.IMPORT_FORMATS:
        imported = {"format": dataset.fmt, **dataset.info, "skipped": dataset.skipped, "fallback_rows": 0}
        imported.update(fitted or {})
    if as_json:
        emit({**report.to_dict(), **({"import": imported} if imported else {})})
        return
    render.learn_report(report)
    render.repetition_warnings(dataset.texts, dataset.labels or [])
    if imported:
        _import_summary(imported)


def _import_summary(imported: dict[str, Any]) -> None:
    """What an import from an intent framework skipped, and where its fallback rows went."""
    skipped = ", ".join(f"{n} {kind}" for kind, n in imported["skipped"].items() if n) or "nothing"
    chosen = "".join(f", {k} {imported[k]}" for k in ("language", "locale") if k in imported)
    typer.echo(f"Read {imported['format']}{chosen}; skipped {skipped}.")
    if imported.get("calibration"):
        cal = imported["calibration"]
        threshold = "none" if cal.get("threshold") is None else f"{cal['threshold']:.2f}"
        n = imported["in_scope_rows"]
        side = f"{n} held-out rows" if n else "the learn's left-out scores"
        typer.echo(
            f"{imported['fallback_rows']} fallback rows fitted the unknown threshold against {side}: "
            f"{threshold}, keeps {cal['keep']:.0%} of in-scope inputs (agent-il calibrate shows it)"
        )


@guarded
def predict(
    ctx: typer.Context,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Classify every text of this file instead.")] = None,
    top_k: Annotated[
        str, typer.Option("--top-k", "-k", metavar="INTEGER", help="How many labels to list per text (1 or more).")
    ] = "3",
    evidence: Annotated[
        str, typer.Option("--evidence", metavar="INTEGER", help="Nearest stored examples to show per text (0 or more).")
    ] = "2",
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
    from agent_il import validation
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    k = validation.positive_int(top_k, "--top-k", text=True)  # numbers are checked here, so nan is an error: line
    n_evidence = validation.non_negative_int(evidence, "--evidence", text=True)
    if bool(texts) == (file is not None):
        raise InvalidInputError("give texts to classify, or --file FILE, not both")
    if file is not None:
        texts = read_file(file, fmt, text_col, None, split, labelled=False).texts
    assert texts is not None
    preds = open_learner(ctx, home, model).predict(texts, k=k, evidence=n_evidence, inbox=inbox)
    if as_json:
        emit({"predictions": [render.prediction_dict(t, p) for t, p in zip(texts, preds)]})
    else:
        render.predictions(texts, preds)


@guarded
def evaluate(
    ctx: typer.Context,
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
    learner = open_learner(ctx, home, model)
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
        from agent_il.bench.plots import accuracy_figure

        accuracy_figure(matrix, names, plot)
    summary = {**matrix.summary(), "task_names": {str(k): v for k, v in names.items()}}
    emit(summary) if as_json else render.matrix(summary, names, plot)


@guarded
def tasks_list(ctx: typer.Context, home: Home = None, as_json: Json = False) -> None:
    """List the tasks, oldest first.

    Example: `agent-il tasks list`
    """
    from agent_il.cli import render

    tasks = open_learner(ctx, home).tasks
    emit({"tasks": [t.__dict__ for t in tasks]}) if as_json else render.task_table(tasks)


@guarded
def tasks_show(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="Task id or name (the newest task of that name).", show_default=False)],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Show one task: its classes, their example and exemplar counts, its held-out accuracy.

    Example: `agent-il tasks show billing`
    """
    from agent_il.cli import render
    from agent_il.errors import InvalidInputError

    learner = open_learner(ctx, home)
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
