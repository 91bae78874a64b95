"""Limits (issue 20): the longest learnable text, evidence cut to it, the wait, the MCP tools'
unknown arguments, the line a bad CSV row is reported on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner, validation
from agent_il.cli import app
from agent_il.errors import InvalidInputError

TEXTS = ["i lost my card", "my card is gone", "where is my card", "pay my bill", "bill payment", "settle my bill"]
LABELS = ["lost_card"] * 3 + ["pay_bill"] * 3


def test_learn_refuses_a_text_over_the_limit_naming_the_row(workspace_dir, encoder):
    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        long = "card " * 300  # 1,500 characters
        with pytest.raises(InvalidInputError, match=r"texts\[2\] has 1,500 characters.*AGENT_IL_MAX_TEXT_CHARS"):
            learner.learn([*TEXTS[:2], long], LABELS[:3])
        assert learner.labels == []


def test_the_limit_is_configurable_and_evidence_is_cut_to_it(workspace_dir, encoder, monkeypatch):
    long = "i lost my card " * 100  # 1,500 characters
    monkeypatch.setenv(validation.MAX_TEXT_CHARS_ENV, "2000")
    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        learner.learn([long, *TEXTS[1:]], LABELS)
        monkeypatch.setenv(validation.MAX_TEXT_CHARS_ENV, "100")
        p = learner.predict(["i lost my card"], evidence=6)[0]
        assert max(len(e.text or "") for e in p.evidence) == 100
        from agent_il.tools.surface import IntentTools

        result = IntentTools(learner).classify_intent("i lost my card")
        assert all(len(e.text or "") <= 100 for e in result.evidence)
        monkeypatch.setenv(validation.MAX_TEXT_CHARS_ENV, "nan")
        with pytest.raises(InvalidInputError, match="AGENT_IL_MAX_TEXT_CHARS"):
            learner.learn(TEXTS, LABELS)


@pytest.mark.parametrize("wait", [-5, float("nan"), float("inf"), 1e9])
def test_open_refuses_a_bad_wait(workspace_dir, encoder, wait):
    with pytest.raises(InvalidInputError, match="wait"):
        IntentLearner.open(workspace_dir, encoder=encoder, wait=wait)
    assert not workspace_dir.exists()


def test_cli_learn_names_the_line_of_a_long_text(tmp_path: Path):
    f = tmp_path / "long.csv"
    f.write_text("text,label\nhello,a\n" + "x" * 5000 + ",b\nbye,a\n")
    result = CliRunner().invoke(app, ["learn", str(f), "--home", str(tmp_path / "kb")])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith(f"error: {f} line 3: the text has 5,000 characters")
    big = tmp_path / "big.csv"  # over the csv module's field limit: the row's own line
    big.write_text("text,label\nhello,a\n" + "x" * 200_000 + ",b\n")
    result = CliRunner().invoke(app, ["learn", str(big), "--home", str(tmp_path / "kb")])
    assert result.exit_code == 1 and f"{big} line 3:" in result.stderr, result.stderr


def test_mcp_refuses_unknown_arguments_without_echoing(workspace_dir, encoder):
    pytest.importorskip("agent_il_mcp")
    from agent_il_mcp.server import build_server
    from mcp.server.mcpserver.exceptions import ToolError

    from agent_il.tools.surface import IntentTools

    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        learner.learn(TEXTS, LABELS)
        server = build_server(IntentTools(learner))

        async def go() -> None:
            listed = await server.list_tools()
            assert all(t.input_schema.get("additionalProperties") is False for t in listed)
            for args, field in (
                ({"text": "hi", "evil": 1}, "evil"),
                ({"text": "zq7-secret-value", "k": "zq7-secret"}, "k"),
            ):
                with pytest.raises(ToolError) as err:
                    await server.call_tool("classify_intent", args)
                assert field in str(err.value) and "zq7" not in str(err.value)

        asyncio.run(go())


def test_holdout_is_bounded(workspace_dir, encoder):
    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        with pytest.raises(InvalidInputError, match=r"holdout must be a finite number in \[0, 0.5\]"):
            learner.learn(TEXTS, LABELS, holdout=0.99)
        assert learner.tasks == []


def test_an_existing_home_directory_is_made_private(tmp_path: Path):
    home = tmp_path / "kb"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    result = CliRunner().invoke(app, ["init", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert home.stat().st_mode & 0o777 == 0o700


def test_learn_warns_of_a_class_of_repeated_texts(tmp_path: Path):
    f = tmp_path / "repeated.csv"
    rows = ["i lost my card", "my card is gone"] * 25 + ["where is my card"]  # 51 rows, 3 distinct texts
    f.write_text("text,label\n" + "".join(f"{t},lost_card\n" for t in rows) + "pay my bill,pay_bill\nbill,pay_bill\n")
    assert CliRunner().invoke(app, ["init", "--home", str(tmp_path / "kb")]).exit_code == 0
    result = CliRunner().invoke(app, ["learn", str(f), "--home", str(tmp_path / "kb")])
    assert result.exit_code == 0, result.output
    assert "lost_card has 51 examples but only 3 distinct texts" in " ".join(result.stdout.split())
    assert "2 new classes" in result.stdout and "1 new classes" not in result.stdout


def test_a_long_rejected_text_waits_in_the_inbox_cut(workspace_dir, encoder):
    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        learner.learn(TEXTS, LABELS)
        learner.calibrate(keep=0.01)  # almost everything is unknown
        long = "what is the weather on the moon " * 100  # 3,200 characters
        assert not learner.predict([long])[0].known
        kept = learner.inbox.items().texts
        assert kept and max(len(t) for t in kept) == validation.MAX_TEXT_CHARS


NAN, INF = float("nan"), float("inf")


def test_the_api_refuses_bad_numbers_before_changing_anything(workspace_dir, encoder):
    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        learner.learn(TEXTS, LABELS)
        state = (workspace_dir / "state.json").read_bytes()
        calls = [
            *(lambda v=v: learner.predict(["hi"], k=v) for v in (NAN, INF, -1, 0, 2.5, "3")),
            *(lambda v=v: learner.predict(["hi"], evidence=v) for v in (NAN, -1, True)),
            *(lambda v=v: learner.calibrate(keep=v) for v in (NAN, INF, 0, 1.5)),
            *(lambda v=v: learner.calibrate(threshold=v) for v in (NAN, INF, -INF, 1e300)),
            *(lambda v=v: learner.inbox.discover(distance=v) for v in (NAN, -1, 0, 3)),
            *(lambda v=v: learner.inbox.discover(min_size=v) for v in (NAN, 0)),
            *(lambda v=v: learner.learn(TEXTS, LABELS, holdout=v) for v in (NAN, INF, -0.1, 0.51)),
            *(lambda v=v: learner.confusions(top=v) for v in (NAN, 0)),
        ]
        for call in calls:
            with pytest.raises(InvalidInputError):
                call()
        assert (workspace_dir / "state.json").read_bytes() == state


def test_the_tools_refuse_bad_numbers(workspace_dir, encoder):
    from agent_il.errors import ToolError
    from agent_il.tools.models import ToolLimits
    from agent_il.tools.surface import IntentTools

    with IntentLearner.open(workspace_dir, encoder=encoder) as learner:
        learner.learn(TEXTS, LABELS)
        tools = IntentTools(learner)
        for k in (NAN, INF, -1, 0, 10**30, "zq7"):
            with pytest.raises(ToolError, match="k") as err:
                tools.call("classify_intent", {"text": "i lost my card", "k": k})
            assert "zq7" not in str(err.value)
    for bad in ({"max_text_chars": 0}, {"max_text_chars": 10**9}, {"max_examples": NAN}, {"evidence": -1}):
        with pytest.raises(InvalidInputError):
            ToolLimits(**bad)
