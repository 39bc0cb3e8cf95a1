"""Structured logs: every line one JSON object (LOG_FORMAT=json, the default) or one readable line (console).

Each line has `timestamp`, `level`, `logger`, `event` and who it is for: `request_id`, `user` (a username) and
`agency` (a code), null where there is none; in a worker also `task_id` and `task`, and `job_id` for a task
that runs a job (an import, a full cross-referencing or alerts pass). Lines of the standard library's loggers
(Django's, Celery's, gunicorn's, the project's `logging.getLogger(__name__)`) get the same fields through
`formatter`; the project's own structured lines come from `structlog.stdlib.get_logger(__name__)`.

Where it is applied: Django's start (`LOGGING_CONFIG` is `configure`, `LOGGING` is `logging_settings(...)`),
Celery's workers and beat (config/celery.py hands Celery's `setup_logging` to Django's), gunicorn's own loggers
(config/gunicorn.py's `logconfig_dict`).
"""

from __future__ import annotations

import inspect
import logging
import logging.config
from collections.abc import Mapping
from typing import Any

import structlog
from celery import signals
from structlog.typing import EventDict, Processor

from . import context


def _request_context(logger: Any, method: str, event: EventDict) -> EventDict:
    """The request (or task) the line was written in: its id, user and agency."""
    ctx = context.peek()
    user = ctx.user if ctx is not None else None
    event.setdefault("request_id", ctx.request_id if ctx is not None else None)
    event.setdefault("user", user.get_username() if user is not None else None)
    event.setdefault("agency", agency_code(user))
    return event


def agency_code(user: Any) -> str | None:
    """The user's agency code when it is already loaded (a token's user is loaded with it): a log line never
    queries the database."""
    descriptor = getattr(type(user), "agency", None)
    if user is None or descriptor is None or not descriptor.is_cached(user):
        return None
    agency = user.agency
    return agency.code if agency is not None else None


def _foreign_fields(logger: Any, method: str, event: EventDict) -> EventDict:
    """Fields that the standard library's records carry in their arguments: a Celery worker's lines about a
    task (`Task %(name)s[%(id)s] succeeded …`) and gunicorn's access lines."""
    args = event.pop("positional_args", None)
    record = event.get("_record")
    if record is None or not isinstance(args, Mapping):
        return event
    if record.name.startswith("celery.") and "id" in args and "name" in args:
        # Written outside the task's own context too ("received"): its id stands for the request's, as inside.
        event.setdefault("task_id", args["id"])
        event.setdefault("task", args["name"])
        if event.get("request_id") is None:
            event["request_id"] = args["id"]
    elif record.name == "gunicorn.access":
        status = str(args.get("s", ""))
        request_id = args.get("{x-request-id}o", "-")
        event.update(
            event="access", remote=args.get("h"), method=args.get("m"), path=args.get("U"),
            status=int(status) if status.isdigit() else None, bytes=args.get("B"),
            duration_ms=round(args.get("D", 0) / 1000, 3), user_agent=args.get("a"),
            request_id=None if request_id == "-" else request_id,
        )
    return event


_FIRST = ("timestamp", "level", "logger", "event", "request_id", "user", "agency", "task", "task_id", "job_id")


def _in_order(logger: Any, method: str, event: EventDict) -> EventDict:
    """The common fields first, in one order, so that lines read alike."""
    return {**{key: event[key] for key in _FIRST if key in event}, **event}


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    _request_context,
]


def formatter(fmt: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: JSON lines, or `console` for a person at a terminal."""
    renderer: list[Processor]
    if fmt == "console":
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    elif fmt == "json":
        renderer = [structlog.processors.format_exc_info, _in_order, structlog.processors.JSONRenderer()]
    else:
        raise ValueError(f"LOG_FORMAT must be json or console, not {fmt!r}")
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, _foreign_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        pass_foreign_args=True,
    )


def logging_settings(fmt: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: one handler (stderr) at the root, which Django's and Celery's loggers reach too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "core.logs.formatter", "fmt": fmt}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # Django's defaults give these handlers of their own (plain text, and runserver's access lines); here
            # they reach the root's, at its level. Each request's line is the project's (core.middleware).
            "django": {"handlers": [], "level": "NOTSET", "propagate": True},
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the standard library's configuration, and structlog's loggers handing their
    lines to it (so both reach the same handlers and formatter)."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # a Python warning is a line like any other, not a bare line on stderr
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- Celery: each task runs in a context of its own -----------------------------------------------------------
# Its lines carry its id and name (and the job it runs); its audit events and its lines share the task's id as
# their request id (an import's job sets the job's id instead: imports.services.run_job).

_tokens: dict[str, tuple[Any, Mapping[str, Any]]] = {}


def job_of(task: Any, args: Any, kwargs: Any) -> str | None:
    """The id of the job a task runs: the argument its `job_arg` option names (core.tasks.task)."""
    name = getattr(task, "job_arg", None)
    if not name:
        return None
    try:
        bound = inspect.signature(task.run).bind(*(args or ()), **(kwargs or {}))
    except TypeError:
        return None
    value = bound.arguments.get(name)
    return None if value is None else str(value)


@signals.task_prerun.connect
def _task_started(sender: Any = None, task_id: str | None = None, task: Any = None, args: Any = None,
                  kwargs: Any = None, **extra: Any) -> None:
    if task_id is None:
        return
    fields = {"task_id": task_id, "task": getattr(task, "name", None)}
    job_id = job_of(task, args, kwargs)
    if job_id is not None:
        fields["job_id"] = job_id
    token = context.begin(context.RequestContext(request_id=task_id))
    _tokens[task_id] = (token, structlog.contextvars.bind_contextvars(**fields))


@signals.task_postrun.connect
def _task_finished(sender: Any = None, task_id: str | None = None, **extra: Any) -> None:
    started = _tokens.pop(task_id, None) if task_id is not None else None
    if started is not None:
        token, bound = started
        structlog.contextvars.reset_contextvars(**bound)
        context.end(token)
