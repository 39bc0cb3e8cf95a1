"""The rate limits: each API user's and each anonymous address's (REST_FRAMEWORK's `user` and `anon` rates), and
the rate of sign-in attempts per client address (AUTH_RATE), shared by every door that checks a password.

Each is counted with one atomic increment in the shared cache (`count_hit`, one round trip): parallel requests
from one client cannot all read the same count and slip past it together. A window opens at a client's first
request and lasts the rate's period; past the limit a request is refused with 429 and `Retry-After` (the seconds
until the window closes). DRF's own rate throttles keep each client's request times as a list, read and written
whole on every call: two round trips and, at the API's rates, tens of kilobytes each.

Past the sign-in limit an attempt is refused before any password is checked, so it neither counts against an
account's lockout nor costs a password hash.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.cache import cache
from rest_framework import throttling

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/minute' -> (10, 60): the number of attempts and the period in seconds (its first letter: s, m, h, d)."""
    number, _, period = rate.partition("/")
    return int(number), PERIODS[period.strip()[:1].lower()]


def check_auth_rate(**kwargs: Any) -> list[checks.CheckMessage]:
    """A rate that does not parse would fail every sign-in: refuse to start instead."""
    try:
        limit, _ = parse_rate(settings.AUTH_RATE)
    except (ValueError, KeyError):
        limit = 0
    if limit > 0:
        return []
    return [checks.Error(f"AUTH_RATE {settings.AUTH_RATE!r} is not a rate such as '10/minute'", id="accounts.E001")]


class WindowCounting:
    """A DRF rate throttle (its rate, scope and cache key) counted in a window by `count_hit`."""

    rate: str | None
    num_requests: int
    duration: int
    retry_after = 0
    get_cache_key: Any  # the throttle's: the client's key, None when the throttle does not apply to the request

    def allow_request(self, request: Any, view: Any) -> bool:
        key = None if self.rate is None else self.get_cache_key(request, view)
        if key is None:
            return True
        count, self.retry_after = cache.count_hit(key, self.duration)  # type: ignore[attr-defined]
        return count <= self.num_requests

    def wait(self) -> float:
        return self.retry_after


class UserRateThrottle(WindowCounting, throttling.UserRateThrottle):
    """The `user` rate per signed-in user (and, as DRF's, per address for a call without one)."""


class AnonRateThrottle(WindowCounting, throttling.AnonRateThrottle):
    """The `anon` rate per client address, for calls without a user."""


class SignInRateThrottle(WindowCounting, throttling.BaseThrottle):
    scope = "sign_in"

    def __init__(self) -> None:
        self.rate = settings.AUTH_RATE
        self.num_requests, self.duration = parse_rate(settings.AUTH_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.method != "POST":  # a form or an OPTIONS request checks no password
            return None
        return f"throttle:{self.scope}:{self.get_ident(request)}"
