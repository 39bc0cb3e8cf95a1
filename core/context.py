"""Per-request context (actor, request id, client address) that services read for the audit trail."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RequestContext:
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ip: str | None = None
    user: Any = None


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "request_context", default=None
)


def current() -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        ctx = RequestContext()
        _current.set(ctx)
    return ctx


def peek() -> RequestContext | None:
    """The current context if there is one (unlike `current`, never makes one): for log lines."""
    return _current.get()


def begin(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def end(token: contextvars.Token) -> None:
    _current.reset(token)
