from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .throttles import SignInRateThrottle

# The login forms outside the API (the API's own door, POST /api/v1/auth/tokens/, throttles in its view).
SIGN_IN_VIEWS = frozenset({"admin:login", "rest_framework:login"})


class SignInRateLimitMiddleware:
    """Answers 429 to a login form's POST from an address past AUTH_RATE, before the form checks any password."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args: tuple,
                     view_kwargs: dict) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or match.view_name not in SIGN_IN_VIEWS:
            return None
        throttle = SignInRateThrottle()
        if throttle.allow_request(request, None):
            return None
        wait = throttle.retry_after
        response = JsonResponse(
            {"detail": f"Too many sign-in attempts from this address. Try again in {wait} seconds."}, status=429)
        response["Retry-After"] = str(wait)
        return response
