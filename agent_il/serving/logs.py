"""Log lines of the servers: plain text, or one JSON object per line (``--log-json``) for a log
collector. Only what a record carries is written: the access log names a token, never holds one."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}
LOGGERS = ("agent_il", "uvicorn", "uvicorn.error", "mcp")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...}``, plus the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(as_json: bool, level: int = logging.INFO) -> None:
    """Send the servers' logs (agent-il's access log, uvicorn's, the MCP SDK's) to stderr."""
    handler = logging.StreamHandler()
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter() if as_json else plain)
    for name in LOGGERS:
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level if name != "mcp" else logging.WARNING)
        log.propagate = False


def line(message: str, as_json: bool, level: int = logging.INFO) -> str:
    """``message`` as the servers' logs write it: one JSON object (of logger ``agent_il.serving``)
    under ``--log-json``, so a log collector reads every line of stderr; plain text otherwise."""
    if not as_json:
        return message
    return JsonFormatter().format(logging.LogRecord("agent_il.serving", level, __file__, 0, message, None, None))
