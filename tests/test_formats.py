"""The importers of intent frameworks' data (Rasa, Dialogflow ES, Amazon Lex V2, semantic-router),
each on its fixture under tests/fixtures/formats (written after the format's documentation; see
each fixture's header or README), and every bad input: one line naming the file, nothing learned."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_il import IntentLearner, data
from agent_il.cli import app
from agent_il.data import DataError
from tests.helpers import fingerprint

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"
NLU, RASA_DIR = FIXTURES / "nlu.yml", FIXTURES / "rasa_project" / "data"
DIALOGFLOW, LEX = FIXTURES / "dialogflow_agent", FIXTURES / "lex_bot"
ROUTES_JSON, ROUTES_YAML = FIXTURES / "semantic_router" / "routes.json", FIXTURES / "semantic_router" / "routes.yaml"


def zipped(folder: Path, dest: Path, skip: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> Path:
    """``folder`` as the zip its framework exports (paths relative to it), minus ``skip``, plus ``extra``."""
    with zipfile.ZipFile(dest, "w") as z:
        for f in sorted(folder.rglob("*")):
            name = f.relative_to(folder).as_posix()
            if f.is_file() and name not in skip and name not in (extra or {}):
                z.write(f, name)
        for name, text in (extra or {}).items():
            z.writestr(name, text)
    return dest


def learn_into(path: Path, encoder, dataset: data.Dataset, holdout: float = 0.0):
    """Learn ``dataset`` into a fresh workspace as ``agent-il learn`` does; (report, calibration fit, labels)."""
    with IntentLearner.open(path, encoder=encoder) as learner:
        report, fitted = data.learn_dataset(learner, dataset, task="import", holdout=holdout)
        return report, fitted, learner.labels


# ------------------------------------------------------------------------------------ each format
def test_rasa_file(tmp_path, encoder):
    ds = data.read(NLU)
    assert ds.fmt == "rasa" and data.detect(NLU) == "rasa"
    assert Counter(ds.labels) == {"greet": 3, "check_balance": 3, "transfer_money": 2, "faq/ask_opening_hours": 2}
    assert ds.skipped == {"synonym": 1, "regex": 1, "lookup": 1}
    assert "what's the balance of my credit card" in ds.texts  # [credit card](account:credit)
    assert "show me my checking balance" in ds.texts  # [checking]{"entity": ..., "value": ...}
    assert "send 50 dollars to Anna" in ds.texts  # list layout with metadata, two annotations
    assert ds.fallback == ["what's the weather like on mars", "tell me a joke about cats", "asdfgh qwerty"]
    report, fitted, labels = learn_into(tmp_path / "kb", encoder, ds, holdout=0.3)
    assert "out_of_scope" not in labels and "nlu_fallback" not in labels and len(labels) == 4
    assert fitted["fallback_rows"] == 3 and fitted["in_scope_rows"] == report.holdout_examples > 0
    assert fitted["calibration"]["mode"] == "fitted"
    assert fitted["calibration"]["fitted_on"] == {"in_scope": report.holdout_examples, "out_of_scope": 3}


def test_rasa_directory_and_keep_fallback():
    ds = data.read(RASA_DIR)
    assert data.detect(RASA_DIR) == "rasa" and ds.info["files"] == ["faq.yml", "nlu.yml"]
    assert Counter(ds.labels) == {"greet": 2, "goodbye": 2, "faq/ask_channels": 2, "faq/ask_languages": 2}
    assert ds.skipped == {"files without nlu": 1} and ds.fallback == ["order me a pizza"]
    kept = data.read(NLU, keep_fallback=True)
    counts = Counter(kept.labels)
    assert kept.fallback == [] and counts["out_of_scope"] == 2 and counts["nlu_fallback"] == 1


def test_dialogflow_zip_and_directory(tmp_path, encoder):
    archive = zipped(DIALOGFLOW, tmp_path / "agent.zip")
    assert data.detect(archive) == "dialogflow" and data.detect(DIALOGFLOW) == "dialogflow"
    en = data.read(archive, language="en")
    assert Counter(en.labels) == {"Default Welcome Intent": 3, "room.book": 3} and en.info == {"language": "en"}
    assert "book a double room for tomorrow" in en.texts and "reserve a suite" in en.texts  # entity parts joined
    assert en.fallback == ["what is the meaning of life", "sing me a song"]  # the fallback's negative examples
    de = data.read(DIALOGFLOW, fmt="dialogflow", language="de")
    assert Counter(de.labels) == {"Default Welcome Intent": 2, "room.book": 2} and "ein doppelzimmer buchen" in de.texts
    assert de.fallback == [] and de.skipped == {"fallback intents without phrases": 1}
    _, fitted, labels = learn_into(tmp_path / "kb", encoder, en)
    assert "Default Fallback Intent" not in labels
    # no held-out slice: the learn's own leave-one-out calibration is the in-scope side
    assert fitted["in_scope_rows"] == 0 and fitted["calibration"]["fitted_on"]["out_of_scope"] == 2


def test_dialogflow_event_only_intent_is_skipped(tmp_path):
    """An intent triggered by events only has no phrases file in any language: skipped, counted."""
    event = json.dumps({"name": "order.status.event", "events": [{"name": "ORDER_STATUS"}], "fallbackIntent": False})
    agent = _copy(DIALOGFLOW, tmp_path, {"intents/order.status.event.json": event})
    en = data.read(agent, language="en")
    assert "order.status.event" not in en.labels and en.skipped["intents without training phrases"] == 1


def test_lex_zip(tmp_path):
    archive = zipped(LEX, tmp_path / "HotelBot.zip")
    assert data.detect(archive) == "lex"
    us = data.read(archive, locale="en_US")
    assert Counter(us.labels) == {"BookRoom": 3, "CancelBooking": 2} and us.info == {"locale": "en_US"}
    assert "book a {RoomType} room" in us.texts and "I no longer need the room on {CheckInDate}" in us.texts
    assert us.skipped == {"built-in intents without utterances": 1} and us.fallback == []  # AMAZON.FallbackIntent
    de = data.read(archive, locale="de_DE")
    assert Counter(de.labels) == {"BookRoom": 2, "CancelBooking": 2} and "ein {RoomType} zimmer buchen" in de.texts


def test_semantic_router_json_and_yaml(tmp_path, encoder):
    assert data.detect(ROUTES_JSON) == "semantic-router" and data.detect(ROUTES_YAML) == "semantic-router"
    js = data.read(ROUTES_JSON)
    assert Counter(js.labels) == {"politics": 3, "chitchat": 3} and js.fallback == []
    ym = data.read(ROUTES_YAML)
    assert Counter(ym.labels) == {"politics": 2, "chitchat": 2} and ym.fallback == ["what is the capital of peru"]
    _, fitted, labels = learn_into(tmp_path / "kb", encoder, ym)
    assert labels == ["politics", "chitchat"] and fitted["fallback_rows"] == 1


# ------------------------------------------------------------------------------------ bad input
def _broken_dialogflow(t: Path) -> Path:
    return zipped(DIALOGFLOW, t / "agent.zip", extra={"intents/room.book.json": '{\n  "name": "room.book",\n}'})


def _plain_zip(t: Path) -> Path:
    with zipfile.ZipFile(t / "export.zip", "w") as z:
        z.writestr("README.txt", "not an agent")
    return t / "export.zip"


def _copy(src: Path, t: Path, edit: dict[str, str | None]) -> Path:
    dest = t / src.name
    shutil.copytree(src, dest)
    for name, text in edit.items():
        (dest / name).unlink() if text is None else (dest / name).write_text(text)
    return dest


def _lex_without_utterances(t: Path) -> Path:
    intent = json.dumps({"name": "CancelBooking", "parentIntentSignature": None, "sampleUtterances": []})
    return zipped(LEX, t / "bot.zip", extra={"HotelBot/BotLocales/en_US/Intents/CancelBooking/Intent.json": intent})


BAD = [  # (make the input from tmp_path, read's options, what the one line says after the file)
    (lambda t: FIXTURES / "bad" / "broken.yml", {}, "bad/broken.yml line 7: not valid YAML"),
    (lambda t: FIXTURES / "bad" / "broken_routes.json", {}, "broken_routes.json line 3: not valid JSON"),
    (_broken_dialogflow, {"language": "en"}, "agent.zip:intents/room.book.json line 3: not valid JSON"),
    (_plain_zip, {}, "export.zip: neither intents/NAME.json (Dialogflow ES) nor BotLocales/"),
    (_plain_zip, {"fmt": "dialogflow"}, "export.zip: no intents/NAME.json files"),
    (_plain_zip, {"fmt": "lex"}, "export.zip: no BotLocales/LOCALE/Intents/NAME/Intent.json"),
    (lambda t: FIXTURES / "bad" / "no_examples.yml", {}, "bad/no_examples.yml line 7: intent 'goodbye' has no"),
    (
        lambda t: _copy(DIALOGFLOW, t, {"intents/room.book_usersays_de.json": None}),
        {"language": "de"},
        "room.book.json: intent 'room.book' has no training phrases in language 'de'",
    ),
    (_lex_without_utterances, {"locale": "en_US"}, "CancelBooking/Intent.json: intent 'CancelBooking' has no"),
    (lambda t: DIALOGFLOW, {"language": "fr"}, "dialogflow_agent: no language 'fr'; it has: de, en"),
    (lambda t: DIALOGFLOW, {}, "dialogflow_agent: holds languages de, en; choose one with --language"),
    (lambda t: zipped(LEX, t / "b.zip"), {"locale": "fr_FR"}, "b.zip: no locale 'fr_FR'; it has: de_DE, en_US"),
    (lambda t: zipped(LEX, t / "b.zip"), {}, "b.zip: holds locales de_DE, en_US; choose one with --locale"),
    (lambda t: NLU, {"locale": "en_US"}, "--locale applies to lex files, not rasa"),
    (lambda t: NLU, {"fmt": "lex"}, "nlu.yml: not a zip archive"),
]


@pytest.mark.parametrize(("make", "options", "says"), BAD)
def test_bad_input_is_one_line_naming_the_file(tmp_path, make, options, says):
    path = make(tmp_path)
    with pytest.raises(DataError) as err:
        data.read(path, **options)
    message = str(err.value)
    assert message.startswith(str(path)) and says in message and "\n" not in message


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("formats") / "kb"
    assert CliRunner().invoke(app, ["init", "--home", str(home)]).exit_code == 0
    return home


@pytest.mark.parametrize(("make", "options", "says"), [BAD[0], BAD[2], BAD[3], BAD[6], BAD[9], BAD[12]])
def test_bad_input_learns_nothing(empty_home, tmp_path, make, options, says):
    flags = [f"--{'format' if k == 'fmt' else k}={v}" for k, v in options.items()]
    before = fingerprint(empty_home)
    result = CliRunner().invoke(app, ["learn", str(make(tmp_path)), *flags, "--home", str(empty_home)])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert says in result.stderr and "Traceback" not in result.output
    assert fingerprint(empty_home) == before


def test_learn_cli_reports_the_import(empty_home, tmp_path):
    home = tmp_path / "kb"
    shutil.copytree(empty_home, home)
    result = CliRunner().invoke(app, ["learn", str(NLU), "--holdout", "0.3", "--json", "--home", str(home)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["import"]["format"] == "rasa" and out["import"]["fallback_rows"] == 3
    assert out["import"]["skipped"] == {"synonym": 1, "regex": 1, "lookup": 1}
    assert out["import"]["calibration"]["fitted_on"]["out_of_scope"] == 3 and len(out["new_classes"]) == 4
    text = CliRunner().invoke(app, ["learn", str(ROUTES_JSON), "--keep-fallback", "--home", str(home)]).stdout
    assert "Read semantic-router; skipped nothing." in text
