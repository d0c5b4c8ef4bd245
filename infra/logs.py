"""Logging for every entry point: records are made safe when they are created.

:func:`install` (called first by ``milestream`` and ``python -m streams``) sets the process
umask so that everything the process writes is private to its owner, and wraps the log-record
factory so that every record, whichever library logs it and whichever handler prints it (Faust
installs its own), has credentials in URLs masked and control characters escaped. Values from
outside reach logs as arguments (``log.warning("... %s", order_id)``): in our own loggers a
newline in an argument is escaped too, so a field cannot forge a log line; a library's own
multi-line messages (Faust's tables) keep their lines. Tracebacks keep their lines, with every
other control character escaped. Uncaught exceptions printed by Python (main thread and threads)
are masked the same way.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from schemas.redact import escape_controls, mask_urls

PRIVATE_UMASK = 0o077  # directories 0700, files 0600
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OUR_LOGGERS = ("milestream", "infra", "streams", "projections", "schemas", "simulator", "solver", "benchmarks")

_installed = False


class _Escaped:
    """An argument that formats as its text with credentials masked and controls escaped."""

    __slots__ = ("value", "keep_lines")

    def __init__(self, value: object, keep_lines: bool) -> None:
        self.value = value
        self.keep_lines = keep_lines

    def __str__(self) -> str:
        return escape_controls(mask_urls(str(self.value)), keep_lines=self.keep_lines)

    def __repr__(self) -> str:
        return escape_controls(mask_urls(repr(self.value)), keep_lines=self.keep_lines)


def _safe_arg(value: Any, keep_lines: bool) -> Any:
    # Numbers and bytes format safely as they are (and %d needs a number); text and objects whose
    # str() may carry data (exceptions, events) are escaped.
    if value is None or isinstance(value, int | float | bytes):
        return value
    return _Escaped(value, keep_lines)


def sanitize(record: logging.LogRecord) -> logging.LogRecord:
    """Make one record safe in place: message formatted with escaped arguments, then masked and
    escaped as a whole (newlines of the format string itself kept); traceback text likewise."""
    ours = record.name.startswith(OUR_LOGGERS)
    args = record.args
    try:
        if isinstance(args, tuple):
            record.args = tuple(_safe_arg(a, keep_lines=not ours) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _safe_arg(v, keep_lines=not ours) for k, v in args.items()}
        message = record.getMessage()
    except Exception:  # e.g. %d given a Decimal: format as given, still masked and escaped below
        record.args = args
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it as it always does
            return record
    record.msg = escape_controls(mask_urls(message), keep_lines=True)
    record.args = ()  # as a record logged without arguments (mode's formatter makes None an argument)
    if record.exc_info and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = escape_controls(mask_urls(text), keep_lines=True)
    if record.stack_info:
        record.stack_info = escape_controls(mask_urls(record.stack_info), keep_lines=True)
    return record


class RedactingFilter(logging.Filter):
    """The same as a filter, for a handler that should not rely on :func:`install`."""

    def filter(self, record: logging.LogRecord) -> bool:
        sanitize(record)
        return True


def _print_masked(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None,
                  prefix: str = "") -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(prefix + escape_controls(mask_urls(text), keep_lines=True))


def install(level: str | int | None = None) -> None:
    """Private files, safe log records and masked tracebacks for this process; with ``level``,
    also log to stderr at that level. Idempotent."""
    global _installed
    os.umask(PRIVATE_UMASK)
    if level is not None:
        logging.basicConfig(level=level, format=FORMAT)
    if _installed:
        return
    _installed = True
    make_record: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def safe_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return sanitize(make_record(*args, **kwargs))

    logging.setLogRecordFactory(safe_record)
    sys.excepthook = _print_masked

    def thread_hook(hook: threading.ExceptHookArgs) -> None:
        if hook.exc_type is SystemExit or hook.exc_value is None:
            return
        name = hook.thread.name if hook.thread else "?"
        _print_masked(hook.exc_type, hook.exc_value, hook.exc_traceback, f"Exception in thread {name}:\n")

    threading.excepthook = thread_hook
