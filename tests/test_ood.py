"""Knowing what it does not know (issue 8): out-of-scope rejection and its calibration, confusable
intents and conflicting labels at learn time, and the inbox round trip. Real model, real Chroma,
real CLINC150 data (its oos splits are measured against, never learned as a class)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner, InvalidInputError
from agent_il.cli import app
from agent_il.config import DEFAULT_SCORE
from agent_il.ood import calibration
from agent_il.ood.scores import ClassStats
from agent_il.results import UNKNOWN

QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "data" / "quickstart"
DOMAINS = Path(__file__).resolve().parent.parent / "examples" / "data" / "clinc150" / "domains.json"


def rows(clinc, split: str, labels: list[str], per_label: int | None = None) -> tuple[list[str], list[str]]:
    texts, ys = clinc.split(split, labels)
    if per_label is None:
        return texts, ys
    seen: Counter[str] = Counter()
    keep = [i for i, y in enumerate(ys) if (seen.update([y]) or seen[y] <= per_label)]
    return [texts[i] for i in keep], [ys[i] for i in keep]


def test_threshold_arithmetic_on_a_known_distribution():
    quantiles = list(np.linspace(0.0, 100.0, calibration.QUANTILES))  # scores uniform on [0, 100]
    assert calibration.threshold_for_keep(quantiles, 0.95) == pytest.approx(5.0)
    assert calibration.keep_for_threshold(quantiles, 30.0) == pytest.approx(0.70)
    assert (
        calibration.threshold_for_keep(quantiles, 1.0) is None
        and calibration.keep_for_threshold(quantiles, -1.0) == 1.0
    )
    # in scope at 5..10 (all right), out of scope at 0..4: the fitted threshold separates them
    fitted = calibration.fit_threshold(np.arange(5.0, 11.0), np.ones(6, dtype=bool), np.arange(0.0, 5.0))
    assert 4.0 < fitted <= 5.0


def test_a_threshold_above_every_calibration_score_keeps_nothing_and_is_saved():
    """A threshold may lie beyond the calibration scores: the kept share is then 0, a valid
    setting that must survive the state's round trip (only --keep itself must be above 0)."""
    from agent_il.config import WorkspaceConfig
    from agent_il.ood.calibration import Calibrator
    from agent_il.state import Calibration, WorkspaceState

    state = WorkspaceState.new(WorkspaceConfig())
    quantiles = list(np.linspace(0.0, 100.0, calibration.QUANTILES))
    state.calibration = Calibration(5.0, {}, quantiles, 100, "test")
    tuned = Calibrator(lambda: state).adjusted(state, threshold=1000.0)
    assert tuned.config.rejection.keep == 0.0 and tuned.calibration.threshold == 1000.0
    assert WorkspaceState.from_json(tuned.to_json()).to_json() == tuned.to_json()
    with pytest.raises(InvalidInputError):
        Calibrator(lambda: state).adjusted(state, keep=0.0)
    with pytest.raises(InvalidInputError):
        Calibrator(lambda: state).adjusted(state, threshold=float("nan"))


def test_calibration_keeps_the_target_share_and_rejects_out_of_scope(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    report = learner.learn(*rows(clinc, "train", clinc.tasks[0]), task="first", holdout=0.1)
    cal = report.calibration
    assert cal["score"] == DEFAULT_SCORE and cal["keep"] == 0.95 and cal["threshold"] is not None
    assert "left out in runs" in cal["source"] and "held-out" in cal["source"]

    test_texts, test_labels = rows(clinc, "test", clinc.tasks[0])
    oos = [t for t, _ in clinc.data["oos_test"][:200]]
    preds = learner.predict(test_texts, k=1, evidence=0, inbox=False)
    kept = np.mean([p.known for p in preds])
    assert 0.88 <= kept <= 0.995  # calibrated on unseen rows for 95%: about that on the test split
    assert all((p.label == UNKNOWN) == (not p.known) and p.score is not None for p in preds)
    assert all(p.known == (p.score >= cal["threshold"]) for p in preds)
    rejected = np.mean([not p.known for p in learner.predict(oos, k=1, evidence=0, inbox=False)])
    assert rejected >= 0.8  # 10 intents: most out-of-scope queries fall outside them

    # a keep rate set by the user moves the threshold, survives reopening and the next learn
    stricter = learner.calibrate(keep=0.8)
    assert stricter["threshold"] > cal["threshold"] and stricter["mode"] == "set"
    assert np.mean([p.known for p in learner.predict(test_texts, k=1, evidence=0, inbox=False)]) < kept
    learner.close()
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    assert learner.calibrator.setting()["keep"] == 0.8
    learner.learn(*rows(clinc, "train", clinc.tasks[1], per_label=30), task="second")
    assert learner.calibrator.setting()["keep"] == 0.8 and learner.calibrator.setting()["mode"] == "set"

    # a threshold fitted on labelled out-of-scope examples rejects most of another oos sample
    fit_texts = [t for t, _ in clinc.data["oos_train"]] + test_texts[:100]
    fitted = learner.calibrate(texts=fit_texts, labels=["oos"] * 100 + test_labels[:100])
    assert fitted["mode"] == "fitted" and fitted["fitted_on"] == {"in_scope": 100, "out_of_scope": 100}
    oos_val = [t for t, _ in clinc.data["oos_val"]]
    assert np.mean([not p.known for p in learner.predict(oos_val, k=1, evidence=0, inbox=False)]) >= 0.7
    with pytest.raises(InvalidInputError, match="neither known"):
        learner.calibrate(texts=["hello there"], labels=["no_such_intent"])


def test_confusion_warning_on_overlapping_intents(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder, auto_snapshots=0)
    texts, labels = rows(clinc, "train", ["balance", "flight_status", "plug_type"])
    first = learner.learn(texts, labels, task="base")
    assert not first.conflicts
    # "account_balance" is CLINC150's "balance" again under a new name (its val split): it overlaps
    overlap, _ = rows(clinc, "val", ["balance"])
    distinct, _ = rows(clinc, "val", ["pay_bill"])
    report = learner.learn(overlap + distinct, ["account_balance"] * 20 + ["pay_bill"] * 20, task="overlap")
    pairs = {(e["new"], e["other"]): e for e in report.confusions}
    assert ("account_balance", "balance") in pairs
    evidence = pairs[("account_balance", "balance")]
    assert max(evidence["rate"], evidence["reverse_rate"]) >= 0.2 or evidence["near_duplicates"]
    assert not any(e["new"] == "pay_bill" and e["other"] in ("flight_status", "plug_type") for e in report.confusions)
    listed = learner.confusions(top=3)
    assert {listed[0]["label"], listed[0]["confused_with"]} == {"balance", "account_balance"}
    assert listed[0]["prototype_similarity"] > 0.8 and listed[0]["examples"]

    # the same text under two labels is reported (and learned as given), within a batch or against memory
    stored = learner.memory.load(learner.state.exemplars["plug_type"][:1]).texts[0]
    clash = learner.learn(
        ["what adapter do i need in italy", "What adapter do I need in  Italy", stored],
        ["plug_adapter", "travel_gear", "travel_gear"],
        task="clash",
    )
    where = {c["where"]: c["labels"] for c in clash.conflicts}
    assert where["this learn"] == ["plug_adapter", "travel_gear"]
    assert where["stored exemplars"] == ["plug_type", "travel_gear"]
    with pytest.raises(InvalidInputError, match="fit no intent"):
        learner.learn(["hello"], ["Unknown"])


def test_inbox_round_trip_unknown_cluster_learn_predicted(clinc, encoder, workspace_dir):
    learner = IntentLearner.open(workspace_dir, encoder=encoder, auto_snapshots=0)
    learner.learn(*rows(clinc, "train", clinc.tasks[0]), task="known")
    unseen = clinc.tasks[1][0]
    queries = rows(clinc, "train", [unseen])[0][:60]  # what users of a missing intent would ask
    preds = learner.predict(queries, k=2, evidence=0)
    rejected = [q for q, p in zip(queries, preds) if not p.known]
    assert len(rejected) >= 40 and all(p.label == UNKNOWN for p in preds if not p.known)
    learner.predict(queries[:3], k=1, evidence=0)  # the same text waits in the inbox once
    assert sorted(learner.inbox.items().texts) == sorted(rejected)

    clusters = learner.inbox.discover()
    assert clusters and clusters[0].size >= 20
    assert set(clusters[0].examples) <= set(rejected)
    report = learner.learn_inbox(clusters[0].key, "new_intent")
    assert report.new_classes == ["new_intent"] and report.examples == clusters[0].size
    assert len(learner.inbox.items().ids) == len(rejected) - clusters[0].size
    with pytest.raises(InvalidInputError, match="no inbox cluster"):
        learner.learn_inbox(clusters[0].key, "again")

    test_queries, _ = rows(clinc, "test", [unseen])
    now = learner.predict(test_queries, k=1, evidence=0, inbox=False)
    assert np.mean([p.top_k[0][0] == "new_intent" for p in now]) >= 0.9
    # an intent learned from a couple of dozen examples scores lower than the others: some of its
    # queries are still rejected (measured: 60% answered new_intent, the rest unknown)
    assert np.mean([p.label == "new_intent" for p in now]) >= 0.5


def test_the_inbox_keeps_the_newest_inputs_up_to_its_limit(encoder, workspace_dir):
    """Anyone who can message the agent adds to the inbox: it stays bounded, oldest out first."""
    learner = IntentLearner.open(workspace_dir, encoder=encoder, auto_snapshots=0)
    learner.inbox.limit = 10
    x = np.random.default_rng(0).standard_normal((25, 384)).astype(np.float32)
    for i in range(25):
        learner.inbox.add(x[i : i + 1], [f"message {i}"], ["some_intent"], [0.1])
        assert len(learner.inbox.items().ids) <= 10
    texts = learner.inbox.items().texts
    assert len(texts) >= 9 and texts == [f"message {i}" for i in range(25 - len(texts), 25)]


def test_discovery_finds_unseen_intents_of_a_held_out_domain(clinc, encoder, workspace_dir):
    """The benchmark (benchmarks/discovery.py) in small: 9 domains learned from 20 examples an
    intent, then the test queries of 3 intents of the tenth plus out-of-scope noise."""
    domains = json.loads(DOMAINS.read_text())
    known = [y for d, ys in domains.items() if d != "travel" for y in ys]
    unseen = ["plug_type", "lost_luggage", "travel_alert"]
    learner = IntentLearner.open(workspace_dir, encoder=encoder, auto_snapshots=0)
    learner.learn(*rows(clinc, "train", known, per_label=20), task="nine-domains")
    probe, truth = rows(clinc, "test", unseen)
    noise = [t for t, _ in clinc.data["oos_test"][:60]]
    preds = learner.predict(probe + noise, k=1, evidence=0)
    label_of = {t: y for t, y, p in zip(probe + noise, truth + ["oos"] * 60, preds) if not p.known}
    clusters = learner.inbox.discover()
    majorities, purities = set(), []
    for c in clusters:
        members = learner.inbox.store.load(c.ids).texts
        majority, count = Counter(label_of[t] for t in members).most_common(1)[0]
        majorities.add(majority)
        purities.append(count / c.size)
    assert len(majorities & set(unseen)) >= 2
    assert np.mean(purities) >= 0.8


def test_cli_unknown_inbox_calibrate_discover(tmp_path):
    home = tmp_path / "kb"

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, [*args, "--home", str(home)])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    run("init")
    learned = json.loads(run("learn", str(QUICKSTART / "banking.csv"), "--holdout", "0.2", "--json"))
    assert learned["calibration"]["keep"] == 0.95 and "confusions" in learned and "conflicts" in learned
    text = run("predict", "what is the weather like in paris tomorrow")
    assert text.startswith("unknown (in-scope score") and "closest:" in text
    out = json.loads(run("predict", "what is the weather like in paris tomorrow", "--json"))["predictions"][0]
    assert out["label"] == UNKNOWN and out["known"] is False and out["score"] < learned["calibration"]["threshold"]
    run("predict", "tell me a joke about penguins", "--no-inbox")
    items = json.loads(run("inbox", "list", "--json"))
    assert [i["text"] for i in items["items"]] == ["what is the weather like in paris tomorrow"]
    assert json.loads(run("calibrate", "--keep", "0.9", "--json"))["keep"] == 0.9
    assert "keeps 90.0%" in run("calibrate")
    assert json.loads(run("discover", "--json")) == {"clusters": []}
    assert "confusions" in json.loads(run("intents", "confusions", "--json"))
    for command in (["calibrate"], ["discover"], ["inbox", "learn"], ["inbox", "list"], ["intents", "confusions"]):
        assert "Example" in CliRunner().invoke(app, [*command, "--help"]).stdout, command
    bad = CliRunner().invoke(app, ["inbox", "learn", "nope", "--as", "x", "--home", str(home)])
    assert bad.exit_code == 1 and "no inbox cluster" in bad.stderr


def test_class_statistics_updated_by_the_rows_that_change_equal_a_fresh_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    y = rng.integers(0, 5, 400)
    before = ClassStats.fit(x[:300], y[:300], 5)
    # a learn adds a sixth class and drops 40 exemplars of the first ones
    after = before.updated((x[300:], np.full(100, 5)), (x[:40], y[:40]), 6)
    fresh = ClassStats.fit(x[40:], np.concatenate([y[40:300], np.full(100, 5)]), 6)
    for field in ("means", "counts", "precision", "background_mean", "background_precision"):
        assert np.allclose(getattr(after, field), getattr(fresh, field), atol=1e-10), field


def refitted(x: np.ndarray, y: np.ndarray, out: list[int], rows: np.ndarray, c: int) -> dict[str, np.ndarray]:
    """The distance scores of ``rows`` (of class ``c``) with the statistics fitted again without the
    rows ``out``, their own class's distance read at the scale a query of the full class meets."""
    from agent_il.ood.scores import _query_scale

    keep = ~np.isin(np.arange(len(x)), out)
    stats = ClassStats.fit(x[keep], y[keep], int(y.max()) + 1)
    dist = stats.classes.distances(rows)
    dist[:, c] *= _query_scale(int((y == c).sum()), len(out))
    background = stats.background.distances(rows)
    return {"mahalanobis": -dist.min(1), "relative": -(dist - background).min(1)}


def test_exemplar_distances_are_scored_as_if_left_out():
    """A calibration row that is an exemplar is measured against its class mean and the shrunk
    covariances as refitted without it (Sherman-Morrison, up to the 1/n change of the scale; its
    own class's distance read as a query of the whole class would meet it): in-sample, its
    distances are far shorter than a new query's."""
    from agent_il.ood.scores import components

    rng = np.random.default_rng(0)
    dim, k, shots = 64, 8, 5
    means = rng.standard_normal((k, dim))
    y = np.repeat(np.arange(k), shots)
    x = (means[y] + 2.0 * rng.standard_normal((k * shots, dim))).astype(np.float32)
    logits = np.zeros((len(x), k))
    stats = ClassStats.fit(x, y, k)
    left_out = components(logits, x, stats, own=y)
    for i in (0, 13, 39):
        refit = refitted(x, y, [i], x[i : i + 1], int(y[i]))
        seen = components(logits[i : i + 1], x[i : i + 1], stats)
        for name in ("mahalanobis", "relative"):
            assert left_out[name][i] == pytest.approx(refit[name][0], rel=0.05), name
            assert abs(seen[name][0] - refit[name][0]) > 5 * abs(left_out[name][i] - refit[name][0]), name
    # rows that are not exemplars (own -1) are scored as any query
    plain = components(logits, x, stats, own=np.full(len(x), -1))
    assert np.allclose(plain["relative"], components(logits, x, stats)["relative"])
    # a run: three exemplars of class 2 out together, and a query in their run measured without them
    run, query = [10, 11, 12], (means[2] + 2.0 * rng.standard_normal(dim)).astype(np.float32)
    mine = [*run, len(x)]
    groups = np.arange(len(x) + 1)
    groups[mine] = 10
    with_query = np.vstack([x, query])
    out = components(np.zeros((len(x) + 1, k)), with_query, stats, np.append(y, -1), groups)
    refit = refitted(x, y, run, with_query[mine], 2)
    seen = components(np.zeros((4, k)), with_query[mine], stats)
    for name in ("mahalanobis", "relative"):
        assert out[name][run] == pytest.approx(refit[name][:3], rel=0.1), name  # the scale: 3 rows of 40 out
        error, off = np.abs(out[name][mine] - refit[name]), np.abs(seen[name] - refit[name])
        assert (off[:3] > 5 * error[:3]).all() and error[3] < off[3], name  # the query moved less, but closer


def test_runs_cut_each_class_in_the_order_given():
    """Calibration leaves a row out with its run: a fifth of its class's rows in a row, where a
    batch of one author's paraphrases would be (a row each when the class has five or fewer)."""
    y = np.array([1] * 10 + [0] * 3 + [1] * 5)
    groups = calibration.runs(y)
    ones = groups[y == 1]
    assert len(set(ones)) == calibration.FOLDS and all(np.diff(ones) >= 0)  # contiguous, in order
    assert [int((ones == g).sum()) for g in np.unique(ones)] == [3, 3, 3, 3, 3]
    assert len(set(groups[y == 0])) == 3 and not set(groups[y == 0]) & set(ones)


def test_a_workspace_taught_paraphrase_batches_keeps_what_it_promises(clinc, encoder, workspace_dir):
    """Each intent's first 30 examples (CLINC150 lists them in batches of one author's paraphrases)
    for 30 intents, ten at a time, with a held-out slice. Scored as left out one at a time, every
    calibration row still had near-twins in the fit and ran more familiar than a new query: this
    kept 88% of the test queries for a target of 95%. Left out with their runs, 93.6%."""
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    for t, labels in enumerate(clinc.tasks[:3]):
        learner.learn(*rows(clinc, "train", labels, per_label=30), task=f"t{t}", holdout=0.2)
    test_texts, _ = rows(clinc, "test", [y for task in clinc.tasks[:3] for y in task])
    kept = np.mean([p.known for p in learner.predict(test_texts, k=1, evidence=0, inbox=False)])
    learner.close()
    assert 0.92 <= kept <= 0.98


def test_a_few_shot_workspace_keeps_what_it_promises(clinc, encoder, workspace_dir):
    """Five examples an intent (each intent's first five), 150 intents learned ten at a time with a
    held-out slice: every row is an exemplar, so calibration rests on leave-one-out scores of
    exemplars. Before they were scored as if left out, this kept 59% of the test queries for a
    target of 95%; now 89% (adjacent rows of CLINC150 are close paraphrases, so these five run a
    little closer to each other than to new queries; a random five keep 96.5%)."""
    learner = IntentLearner.open(workspace_dir, encoder=encoder)
    for t, labels in enumerate(clinc.tasks):
        learner.learn(*rows(clinc, "train", labels, per_label=5), task=f"t{t}", holdout=0.2)
    test_texts, _ = rows(clinc, "test", [y for task in clinc.tasks for y in task])
    kept = np.mean([p.known for p in learner.predict(test_texts, k=1, evidence=0, inbox=False)])
    learner.close()
    assert 0.85 <= kept <= 0.99
