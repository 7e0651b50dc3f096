"""Structured logs: one JSON object per line (or a plain text line), carrying the request id.

Our own formatter (~40 lines) rather than python-json-logger or structlog: we need a fixed field
set, the request id from a contextvar and a redaction pass, which is less code than configuring
either library to do it, and one dependency fewer.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# Set by the request-context middleware for the duration of one HTTP request.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("fileregistry_request_id", default=None)

REDACTED = "********"
# Safety net: a field whose name looks like a secret never reaches the log, whatever its value.
_SECRET_NAME = re.compile(r"password|passwd|private_key|privatekey|token|secret|authorization|cookie", re.IGNORECASE)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def redact(value: Any, name: str = "") -> Any:
    """``value`` with every field named like a secret (at any depth of dicts/lists) replaced."""
    if name and _SECRET_NAME.search(name):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: redact(v, k) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an int beyond 64 bits: a log line must never be lost to its encoding
        return json.dumps(value, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """``{"timestamp", "level", "logger", "message", "request_id", <extra fields>, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return _dumps(out)


class TextFormatter(logging.Formatter):
    """``<ts> LEVEL logger [request_id] message key=value ...`` for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        rid = request_id_var.get() or "-"
        # Values as JSON: a newline in a path cannot forge a second log line.
        extra = "".join(f" {k}={_dumps(v)}" for k, v in _fields(record).items())
        line = f"{_timestamp(record)} {record.levelname} {record.name} [{rid}] {record.getMessage()}{extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _drop_alembic_chatter(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(("Context impl", "Will assume"))


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> logging.Handler:
    """Send every log record (ours, uvicorn's, asyncssh's) through one handler on the root logger."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers get their own handlers when uvicorn configures logging; we ask it not to
    # (log_config=None), but make sure they propagate to ours either way.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    # Alembic says which dialect it uses on every MigrationContext, i.e. on every /readyz probe.
    logging.getLogger("alembic.runtime.migration").addFilter(_drop_alembic_chatter)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # asyncssh logs every channel open/close at INFO: noise at our default level.
    if root.level == logging.INFO:
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    return handler
