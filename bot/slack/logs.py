"""How `citebot serve` logs: a line a person reads, or with `log.format = "json"`
(LOG_FORMAT=json) one JSON object a line, which a log shipper reads without a pattern."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A record's extra fields (`log.info(..., extra={FIELDS: {...}})`) go into its JSON object.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's fields, and
    an exception as one string (never lines of a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= getattr(record, FIELDS, {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str) -> None:
    """Logs of this process (INFO and above) to stderr, in `log_format` ("text" or "json")."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def gunicorn_logging(log_format: str) -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: its own lines in `log_format` too ({} keeps its own)."""
    if log_format != "json":
        return {}
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        },
    }
