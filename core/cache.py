"""The cache: Redis while it answers, a local-memory cache in each process while it does not.

No request may fail because Redis is away (the throttles read and write the cache on every API call). When a
Redis call fails, the cache logs it, serves from a process-local LocMemCache and tries Redis again after
CACHE_RETRY_SECONDS. What is cached is only ever a hint (throttle counts, audit verification results): losing
or splitting it while Redis is away is harmless.

Beside Django's operations it counts hits in a window (`count_hit`), the rate limits' one operation: an atomic
increment, the window's expiry set by its first hit, and the time left, in one round trip to Redis.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


class FallbackRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._local = LocMemCache(f"fallback:{server}", {"TIMEOUT": params.get("TIMEOUT", 300),
                                                         "KEY_PREFIX": params.get("KEY_PREFIX", ""),
                                                         "VERSION": params.get("VERSION", 1)})
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # count_hit's windows while Redis is away: count, end

    @property
    def redis_is_away(self) -> bool:
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._either(getattr(super(), name), getattr(self._local, name), *args, **kwargs)

    def _either(self, on_redis: Callable[..., Any], on_local: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self.redis_is_away:
            try:
                return on_redis(*args, **kwargs)
            except redis.RedisError as exc:
                with self._lock:
                    if not self.redis_is_away:
                        logger.warning("cache: Redis is away (%s); a local cache serves for %ss",
                                       exc, settings.CACHE_RETRY_SECONDS)
                    self._down_until = time.monotonic() + float(settings.CACHE_RETRY_SECONDS)
        return on_local(*args, **kwargs)

    @functools.cached_property
    def _writer(self) -> redis.Redis:
        # Django's client makes a new Redis client object (over its pool) for every operation; this one is kept.
        return self._cache.get_client(write=True)  # type: ignore[attr-defined]

    def count_hit(self, key: str, period: int) -> tuple[int, int]:
        """One more hit on `key`, in a window of `period` seconds opened by its first hit: the window's hits so far
        (this one included) and the whole seconds until it closes (at least 1)."""
        return self._either(self._redis_hit, self._local_hit, self.make_and_validate_key(key), period)

    def _redis_hit(self, key: str, period: int) -> tuple[int, int]:
        pipe = self._writer.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, period, nx=True)
        pipe.ttl(key)
        count, _, left = pipe.execute()
        return int(count), left if left > 0 else period

    def _local_hit(self, key: str, period: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            if len(self._windows) > 10_000:  # only a Redis outage fills it: drop the windows that have closed
                self._windows = {k: window for k, window in self._windows.items() if window[1] > now}
            count, ends = self._windows.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + period
            self._windows[key] = (count + 1, ends)
        return count + 1, max(1, math.ceil(ends - now))


def _through_fallback(name: str) -> Callable[..., Any]:
    def method(self: FallbackRedisCache, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


# Every operation RedisCache implements itself (the others, e.g. get_or_set and decr, are built on these).
for _name in ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many",
              "clear"):
    setattr(FallbackRedisCache, _name, _through_fallback(_name))
