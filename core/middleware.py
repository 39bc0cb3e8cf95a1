import re

from . import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request one id (or the caller's `X-Request-ID`) shared by all its audit events."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        ctx = context.RequestContext(ip=request.META.get("REMOTE_ADDR"))
        if _REQUEST_ID.match(supplied):
            ctx.request_id = supplied
        token = context.begin(ctx)
        try:
            response = self.get_response(request)
        finally:
            context.end(token)
        response["X-Request-ID"] = ctx.request_id
        return response
