"""Benchmark outputs: results.json, a Markdown report and PNG plots in one directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_il.bench.baselines import BASELINES
from agent_il.bench.plots import accuracy_figure, curves_figure
from agent_il.bench.protocol import REFERENCE, BenchResult
from agent_il.storage import atomic

COLUMNS = (
    ("final_accuracy", "final ACC"),
    ("average_incremental_accuracy", "avg incr. ACC"),
    ("forgetting", "forgetting"),
    ("backward_transfer", "BWT"),
    ("learn_seconds_per_task", "learn s/task"),
    ("learn_seconds_total", "learn s total"),
)


def cell(figure: dict[str, float | None], digits: int = 1) -> str:
    if figure["mean"] is None:
        return "-"
    return f"{figure['mean']:.{digits}f} ± {figure['std']:.{digits}f}"


def table_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, s in summary.items():
        digits = {"learn_seconds_per_task": 3, "learn_seconds_total": 2}
        rows.append([name, *[cell(s[key], digits.get(key, 1)) for key, _ in COLUMNS], f"{s['state_bytes'] / 1e6:.1f}"])
    return rows


HEADER = ["strategy", *[title for _, title in COLUMNS], "state MB"]


def markdown(result: dict[str, Any], title: str) -> str:
    p = result["protocol"]
    lines = [
        f"# {title}",
        "",
        f"Class-incremental protocol: {p['classes']} classes in {p['tasks']} tasks"
        + (f" (first {p['tasks_run']} run)" if p["tasks_run"] != p["tasks"] else "")
        + f", seeds {', '.join(map(str, p['seeds']))},"
        f" {p['memory_per_class']} exemplars per class where memory is used,"
        + (f" {p['shots']} training examples an intent (drawn per seed)," if p.get("shots") else "")
        + f" {p['train_examples']} training and {p['test_examples']} test examples, model {p.get('model', '?')}."
        " Accuracy in % on the test examples of every class seen so far, no task id; mean ± std over seeds.",
        f"`{REFERENCE}` retrains a fresh head on all data seen so far (the reference); `naive` is the floor."
        + (
            " Baselines: " + ", ".join(f"`{n}`" for n in BASELINES if n in result["strategies"]) + "."
            if any(n in result["strategies"] for n in BASELINES)
            else ""
        ),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *["| " + " | ".join(row) + " |" for row in table_rows(result["strategies"])],
        "",
        f"Default strategy: `{result['default']}`; best final accuracy here: `{result['best']}`.",
        f"Peak memory of the benchmark process: {result['peak_rss_bytes'] / 2**20:.0f} MiB.",
        "",
        *oos_lines(result.get("oos")),
        "![accuracy per step](curves.png)",
        "",
        f"![accuracy matrix of the default, seed {p['seeds'][0]}](matrix-{result['default']}.png)",
        "",
    ]
    return "\n".join(lines)


def oos_rows(oos: dict[str, Any]) -> list[list[str]]:
    """One row per score and setting: in-scope accuracy / oos recall / keep, auto-calibrated."""
    rows = []
    for name in oos["joint"]["scores"]:
        for setting in ("joint", "incremental"):
            a = oos[setting]["scores"][name]["auto"]
            cells = [f"{a['in_scope_accuracy']:.1f}", f"{a['oos_recall']:.1f}", f"{a['in_scope_keep']:.1f}"]
            rows.append([name, setting, *cells, f"{oos[setting]['scores'][name]['auroc']:.1f}"])
    return rows


OOS_HEADER = ["score", "setting", "in-scope acc", "oos recall", "in-scope keep", "AUROC"]


def oos_lines(oos: dict[str, Any] | None) -> list[str]:
    if oos is None:
        return []
    return [
        "Out-of-scope rejection of the default head (oos splits measured, never learned), threshold"
        " calibrated by the workspace's own rule for 95% in-scope keep; `joint` learned all intents"
        " at once, `incremental` task by task:",
        "",
        "| " + " | ".join(OOS_HEADER) + " |",
        "|" + "---|" * len(OOS_HEADER),
        *["| " + " | ".join(row) + " |" for row in oos_rows(oos)],
        "",
    ]


def write(
    result: BenchResult, out: Path, title: str, extra: dict[str, Any], oos: dict[str, Any] | None = None
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = {**result.to_dict()}
    data["protocol"] = {**data["protocol"], **extra}
    if oos is not None:
        data["oos"] = oos
    atomic.write_json(out / "results.json", data)
    atomic.write_bytes(out / "report.md", markdown(data, title).encode())
    curves = {name: s["accuracy_per_step"] for name, s in data["strategies"].items()}
    curves_figure(curves, title, out / "curves.png")
    default = result.default if result.default in result.runs else next(iter(result.runs))
    names = {t: f"task {t}" for t in result.runs[default][0].matrix.tasks}
    accuracy_figure(result.runs[default][0].matrix, names, out / f"matrix-{default}.png")
    return data
