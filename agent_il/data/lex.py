"""Amazon Lex V2 bot exports (the zip of Export, or its unpacked directory).

Each locale's intents are ``BOT/BotLocales/LOCALE/Intents/NAME/Intent.json``; their phrases are
``sampleUtterances[].utterance``, slot placeholders such as ``{Slot}`` kept as written (they are
part of what users type around). A bot with several locales needs ``locale``. Built-in intents
without utterances (``parentIntentSignature`` such as ``AMAZON.FallbackIntent``) are skipped and
counted; a fallback intent's utterances, if any, are out-of-scope rows.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent_il.data.base import DataError, Parsed, Tree, check_label, is_fallback, pick

INTENT = re.compile(r"^(?:.*/)?BotLocales/(?P<locale>[^/]+)/Intents/(?P<name>[^/]+)/Intent\.json$")
FALLBACK_SIGNATURE = "AMAZON.FallbackIntent"


def looks_like(names: list[str]) -> bool:
    return any("BotLocales/" in n for n in names)


def read(path: Path, *, locale: str | None = None, max_chars: int | None = None) -> Parsed:
    parsed = Parsed(str(path), "lex")
    with Tree(path) as tree:
        found = [(m["locale"], m["name"], n) for n in tree.names if (m := INTENT.match(n))]
        if not found:
            raise DataError(f"{path}: no BotLocales/LOCALE/Intents/NAME/Intent.json; not an Amazon Lex V2 bot export")
        chosen = pick(sorted({loc for loc, _, _ in found}), locale, "locale", "--locale", str(path))
        parsed.info["locale"] = chosen
        for _, name, n in sorted(f for f in found if f[0] == chosen):
            where = tree.where(n)
            intent = tree.json(n)
            if not isinstance(intent, dict):
                raise DataError(f"{where}: expected an intent object")
            label = check_label(intent.get("name", name), where)
            parent = intent.get("parentIntentSignature")
            fallback = parent == FALLBACK_SIGNATURE or is_fallback(label)
            samples = intent.get("sampleUtterances") or []
            if not isinstance(samples, list):
                raise DataError(f"{where}: sampleUtterances must be a list")
            if not samples:
                if parent or fallback:
                    parsed.skipped["built-in intents without utterances"] += 1
                    continue
                raise DataError(f"{where}: intent {label!r} has no sampleUtterances")
            for i, sample in enumerate(samples, start=1):
                text = sample.get("utterance") if isinstance(sample, dict) else None
                parsed.add(text, label, fallback, f"{where} sampleUtterances item {i}", max_chars)
    return parsed
