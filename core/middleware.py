import re
import time

import structlog
from django.utils.log import log_response

from . import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

log = structlog.stdlib.get_logger(__name__)


def route_name(request) -> str:
    """The name of the route a request matched (`case-detail`, `admin:index`), never its pattern or path;
    `unmatched` when none did (a 404 outside every route)."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "unmatched"


class RequestContextMiddleware:
    """Gives every request one id (or the caller's `X-Request-ID`) shared by all its audit events and log lines,
    and writes one log line per request (core.logs adds its id, user and agency)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        supplied = request.headers.get("X-Request-ID", "")
        ctx = context.RequestContext(ip=request.META.get("REMOTE_ADDR"))
        if _REQUEST_ID.match(supplied):
            ctx.request_id = supplied
        token = context.begin(ctx)
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # Django would log this ("Not Found: /path") after every middleware, outside the request's context;
                # here its line carries the request's id and user, and Django does not write it again.
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            self._log(request, response, ctx, started)
        finally:
            context.end(token)
        response["X-Request-ID"] = ctx.request_id
        return response

    @staticmethod
    def _log(request, response, ctx: context.RequestContext, started: float) -> None:
        who = {}
        if ctx.user is None:
            # Signed in by a session (the admin): Django's user, which a token's request does not set in context.
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                who = {"user": user.get_username(), "agency": getattr(getattr(user, "agency", None), "code", None)}
        log.info("request", method=request.method, path=request.path, route=route_name(request),
                 status=response.status_code, duration_ms=round((time.perf_counter() - started) * 1000, 3), **who)
