"""The rate of sign-in attempts per client address (AUTH_RATE), shared by every door that checks a password.

Counted with an atomic increment in the shared cache: parallel attempts from one address cannot all read the same
count and slip past it together. A window opens at an address's first attempt and lasts the rate's period; past
the limit an attempt is refused before any password is checked, so it neither counts against an account's lockout
nor costs a password hash.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

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


class SignInRateThrottle(BaseThrottle):
    scope = "sign_in"

    def __init__(self) -> None:
        self.limit, self.period = parse_rate(settings.AUTH_RATE)
        self.retry_after = 0

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method != "POST":  # a form or an OPTIONS request checks no password
            return True
        key = f"throttle:{self.scope}:{self.get_ident(request)}"
        now = time.time()
        if cache.add(key, 0, timeout=self.period):
            cache.set(f"{key}:start", now, timeout=self.period)
        try:
            count = cache.incr(key)
        except ValueError:  # the window ended between add and incr: this attempt opens the next one
            cache.set(key, 1, timeout=self.period)
            cache.set(f"{key}:start", now, timeout=self.period)
            count = 1
        if count <= self.limit:
            return True
        started = cache.get(f"{key}:start") or now
        self.retry_after = max(1, math.ceil(started + self.period - now))
        return False

    def wait(self) -> float:
        return self.retry_after
