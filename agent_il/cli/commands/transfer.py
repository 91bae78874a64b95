"""``agent-il export``, ``import``, ``migrate`` and ``consolidate``: write every stored example out
(JSONL with every field, CSV, Rasa NLU, a semantic-router config), replay a JSONL export into
another workspace, move a workspace to another encoder, or to its own encoder fine-tuned on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_il.cli.context import Backend, Home, Json, Model, emit, guarded, open_learner


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)
    app.command("migrate")(migrate)
    app.command("consolidate")(consolidate)


@guarded
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the examples.", show_default=False)],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl (every field: what `import` replays), csv (text, label, task, source, held_out), rasa "
            "(nlu.yml) or semantic-router (route config JSON). Default: from the extension.",
        ),
    ] = None,
    intents: Annotated[
        list[str] | None, typer.Option("--intent", help="Only this intent's examples (repeat for several).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Write every stored example, learned and held out, with its label, task and source.

    A JSONL export keeps every field and replays with `agent-il import` into another workspace,
    which then predicts the same. FILE is written whole or not at all; an existing FILE is kept
    unless `--force`.

    Example: `agent-il export kb.jsonl`, or `agent-il export nlu.yml --intent pay_bill`
    """
    from agent_il import data

    data.writers.export_format(file, fmt)  # checked before the workspace is opened
    result = data.export_examples(open_learner(ctx, home), file, fmt=fmt, intents=intents, force=force)
    if as_json:
        emit(result)
        return
    left = f" ({result['without_text']} learned as vectors, without text, left out)" if result["without_text"] else ""
    typer.echo(
        f"Wrote {result['examples']} examples ({result['held_out']} held out) of {result['intents']} intents "
        f"from {result['tasks']} tasks to {result['path']} as {result['format']}{left}."
    )


@guarded
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A JSONL file `agent-il export` wrote.", show_default=False)],
    model: Model = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Replay a JSONL export: its tasks in their original order and names, each with the same
    held-out slice, so that a fresh workspace predicts what the exported one did.

    Every line is checked before the first learn; each task is then one learn (and one
    automatic snapshot, so `agent-il rollback` undoes the last).

    Example: `agent-il init --home ./copy && agent-il import kb.jsonl --home ./copy`
    """
    from agent_il import data
    from agent_il.cli import render

    data.transfer.plan_replay(data.transfer.read_export(file), str(file))  # bad input: nothing is opened
    learner = open_learner(ctx, home, model)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        result = data.replay_export(learner, file, on_progress=advance)
    reports = result.pop("reports")
    if as_json:
        emit({**result, "reports": [r.to_dict() for r in reports]})
        return
    for t in result["tasks"]:
        same = "same held-out slice" if t["held_out_reproduced"] else "held-out slice drawn again"
        typer.echo(f"task {t['task_id']} {t['task']}: {t['examples']} examples, {t['held_out']} held out ({same})")
    typer.echo(f"Imported {result['examples']} examples in {len(result['tasks'])} tasks from {result['path']}.")


@guarded
def migrate(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="The encoder to move to: a sentence-transformers name or local directory.",
            show_default=False,
        ),
    ],
    backend: Backend = "auto",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Move the workspace to another encoder: every stored text (examples, held-out slices, the
    inbox, corrections waiting for review) is encoded again with MODEL, and every learn is
    learned again on the new vectors, in order, so the workspace answers as if it had learned
    them all with MODEL.

    One transaction: nothing changes unless all of it succeeds, and `agent-il rollback` returns
    to the old encoder, head and records. The new model must be available offline (a local
    directory, or a name in the local Hugging Face cache).

    Example: `agent-il migrate --model ./models/all-mpnet-base-v2`
    """
    from agent_il.cli import render

    learner = open_learner(ctx, home)
    with render.progress(enabled=not as_json, what="Encoding") as advance:
        report = learner.migrate(model, backend=backend, on_progress=advance)
    if as_json:
        emit(report.to_dict())
        return
    render.migration_report(report)


@guarded
def consolidate(
    ctx: typer.Context,
    max_minutes: Annotated[
        str,
        typer.Option(
            "--max-minutes", metavar="NUMBER", help="Time budget for all of it; the fine-tune takes what is left."
        ),
    ] = "10",
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Let the encoder learn from the knowledge base: fine-tune the base encoder on every stored
    example (held-out ones never), keep it in the workspace, then migrate to it (every stored
    text encoded again, every learn learned again).

    Learns stay fast and use the adapted encoder from then on; run it again after many learns
    (it always starts from the base model, so it follows edits and erasures). One transaction:
    `agent-il rollback` returns to the encoder and head before. Uses CUDA when present.

    Example: `agent-il consolidate --max-minutes 10`
    """
    from agent_il import validation
    from agent_il.cli import render
    from agent_il.consolidation import MAX_MINUTES

    minutes = validation.real(max_minutes, "--max-minutes", 0.0, MAX_MINUTES, open_min=True, text=True)
    learner = open_learner(ctx, home)
    with render.progress(enabled=not as_json, what="Fine-tuning") as advance:
        phases = {"tuning": "Fine-tuning", "encoding": "Encoding"}
        tick = (lambda phase, done, total: advance(done, total, phases[phase])) if advance else None
        report = learner.consolidate(max_minutes=minutes, on_progress=tick)
    if as_json:
        emit(report.to_dict())
        return
    render.consolidation_report(report)
