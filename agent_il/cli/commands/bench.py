"""``agent-il bench``: every strategy on the class-incremental protocol. The data work (reading,
encoding, the embedding cache, the oos splits) is agent_il.bench.datasets; this parses and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_il.cli.context import Backend, Format, Json, LabelCol, TextCol, emit, guarded

MAX_TASKS = 10_000
MAX_MEMORY_PER_CLASS = 100_000  # exemplars per class: more than any intent data set holds


def register(app: typer.Typer) -> None:
    app.command()(bench)


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
        str | None,
        typer.Option("--tasks", metavar="INTEGER", help="Number of tasks (default: most tasks of >= 10 classes)."),
    ] = None,
    seeds: Annotated[
        list[str] | None, typer.Option("--seeds", help="Seeds: --seeds 0,1,2 or repeated (default 0 1 2).")
    ] = None,
    strategy_names: Annotated[
        list[str] | None, typer.Option("--strategies", help="Strategies to compare (default: all, plus joint).")
    ] = None,
    memory_per_class: Annotated[
        str, typer.Option("--memory-per-class", metavar="INTEGER", help="Exemplar budget for every strategy.")
    ] = "20",
    shots: Annotated[
        str | None,
        typer.Option(
            "--shots",
            metavar="INTEGER",
            help="Few-shot: learn this many training examples an intent (drawn per seed); the baselines "
            "(nearest-mean, router, logreg) run too.",
        ),
    ] = None,
    consolidate_every: Annotated[
        str | None,
        typer.Option(
            "--consolidate-every",
            metavar="INTEGER",
            help="Consolidate after every K tasks and after the last: the encoder is fine-tuned on the "
            "examples seen so far and the strategy learns them again on its vectors.",
        ),
    ] = None,
    max_minutes: Annotated[
        str,
        typer.Option("--max-minutes", metavar="NUMBER", help="With --consolidate-every: each fine-tune's budget."),
    ] = "10",
    quick: Annotated[bool, typer.Option("--quick", help="One seed and the first 3 tasks only: a smoke run.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for results.json, report.md and plots.")] = Path(
        "bench-results"
    ),
    model: Annotated[str | None, typer.Option("--model", help="Encoder (default: bundled all-MiniLM-L6-v2).")] = None,
    backend: Backend = "auto",
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

    Example: `agent-il bench examples/data/clinc150/data_full.json --seeds 0,1,2 --out results/clinc150`,
    or few-shot against the baselines: `agent-il bench examples/data/banking77/train.csv --test
    examples/data/banking77/test.csv --shots 10`
    """
    from agent_il import strategies, validation
    from agent_il.bench import datasets, protocol, reports
    from agent_il.bench.baselines import BASELINES
    from agent_il.cli import render
    from agent_il.consolidation import MAX_MINUTES
    from agent_il.encoding.base import check_backend

    check_backend(backend)  # refused before anything is read, encoded or written
    n_tasks_asked = None if tasks is None else validation.integer(tasks, "--tasks", 1, MAX_TASKS, text=True)
    memory = validation.positive_int(memory_per_class, "--memory-per-class", MAX_MEMORY_PER_CLASS, text=True)
    n_shots = None if shots is None else validation.positive_int(shots, "--shots", MAX_MEMORY_PER_CLASS, text=True)
    every = (
        None
        if consolidate_every is None
        else validation.positive_int(consolidate_every, "--consolidate-every", MAX_TASKS, text=True)
    )
    minutes = validation.real(max_minutes, "--max-minutes", 0.0, MAX_MINUTES, open_min=True, text=True)
    seed_list = _seeds(seeds) if seeds else [0, 1, 2]
    if quick:
        seed_list = seed_list[:1]
    names = [n for item in (strategy_names or []) for n in item.split(",") if n] or [
        *strategies.REGISTRY,
        protocol.REFERENCE,
        *(BASELINES if n_shots else ()),
    ]
    corpus = datasets.read(train, test, fmt=fmt, text_col=text_col, label_col=label_col)
    if n_tasks_asked is not None and n_tasks_asked > corpus.classes:  # refused before anything is encoded
        from agent_il.errors import InvalidInputError

        raise InvalidInputError(
            f"--tasks must be between 1 and the number of classes ({corpus.classes}), got {n_tasks_asked}"
        )
    n_tasks = n_tasks_asked or protocol.default_task_count(corpus.classes)
    with datasets.Embeddings(model, cache_dir, backend) as embed:
        consolidator = None
        if every is not None:
            from agent_il.bench.consolidating import Consolidator

            consolidator = Consolidator(embed.model_id, every, minutes)
        with render.progress(enabled=not as_json, what="Encoding") as advance:
            train_split, test_split = datasets.encode(corpus, embed, on_progress=advance)
        tasks_run = min(3, n_tasks) if quick else n_tasks
        steps = len(names) * len(seed_list) * tasks_run
        with render.progress(enabled=not as_json, what="Learning") as advance:
            done = [0]

            def tick() -> None:
                done[0] += 1
                if advance:
                    advance(done[0], steps)

            result = protocol.run(
                train_split,
                test_split,
                names=names,
                n_tasks=n_tasks,
                seeds=seed_list,
                memory_per_class=memory,
                limit_tasks=tasks_run,
                on_task=tick,
                shots=n_shots,
                consolidate=consolidator,
            )
        extra = {
            "model": embed.model_id,
            "backend": embed.backend,
            "train": str(train),
            "test": str(test or train),
            "encoded_texts": embed.encoded_count,  # 0 when every embedding came from the cache
            "max_minutes": minutes if every else None,
        }
        oos = None
        if not quick and not n_shots and corpus.has_oos():  # CLINC150 at full data: rejection figures too
            if consolidator is None:
                oos = datasets.oos_figures(corpus, embed, train_split, test_split, n_tasks)
            else:  # the first seed's encoder, tuned on every training example
                moved = consolidator.all_rows(train_split, test_split, seed_list[0])
                oos = datasets.oos_figures(corpus, consolidator.embed(seed_list[0]), *moved, n_tasks)
    written = reports.write(result, out, f"Class-incremental benchmark: {train.name}", extra, oos=oos)
    emit(written) if as_json else render.bench_table(written, out)


def _seeds(values: list[str]) -> list[int]:
    """``--seeds 0,1,2``, ``--seeds 0 --seeds 1`` or a mix of the two."""
    from agent_il import validation
    from agent_il.errors import InvalidInputError

    try:
        return [
            validation.integer(s, "--seeds", 0, 2**32 - 1, text=True) for v in values for s in v.split(",") if s.strip()
        ]
    except InvalidInputError:
        shown = " ".join(values)
        shown = shown if len(shown) <= 40 else shown[:39] + "\u2026"
        raise InvalidInputError(f"--seeds takes whole numbers from 0 to {2**32 - 1}, got {shown}") from None
