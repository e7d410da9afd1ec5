"""Structured JSON logs, on standard error. Nothing here ever logs a header, a key or a token.

Standard error, not standard output: a command's output is its answer (``signoff ... --json``
is parsed by scripts and by ``signoff demo``), and a warning such as ``key_generated`` on
a first run must not corrupt it. The stream is looked up at each write, not kept: whoever
replaces ``sys.stderr`` (a test's capture, a daemon's redirect) gets the lines.
"""

import logging
import sys

import structlog


class _StandardError:
    """``sys.stderr`` as it is at each write."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


STDERR = _StandardError()


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", level=level.upper(), stream=STDERR)  # type: ignore[arg-type]
    # httpx logs every request it sends at INFO (the demo's agent, the console's client):
    # noise beside our own structured lines, so only its warnings are kept.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(STDERR),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
