"""The cache: Redis while it answers, a local-memory cache in each process while it does not.

No request may fail because Redis is away (the throttles read and write the cache on every API call). When a
Redis call fails, the cache logs it, serves from a process-local LocMemCache and tries Redis again after
CACHE_RETRY_SECONDS. What is cached is only ever a hint (throttle counts, audit verification results): losing
or splitting it while Redis is away is harmless.
"""

from __future__ import annotations

import logging
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

    @property
    def redis_is_away(self) -> bool:
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self.redis_is_away:
            try:
                return getattr(super(), name)(*args, **kwargs)
            except redis.RedisError as exc:
                with self._lock:
                    if not self.redis_is_away:
                        logger.warning("cache: Redis is away (%s); a local cache serves for %ss",
                                       exc, settings.CACHE_RETRY_SECONDS)
                    self._down_until = time.monotonic() + float(settings.CACHE_RETRY_SECONDS)
        return getattr(self._local, name)(*args, **kwargs)


def _through_fallback(name: str) -> Callable[..., Any]:
    def method(self: FallbackRedisCache, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, *args, **kwargs)

    method.__name__ = name
    return method


# Every operation RedisCache implements itself (the others, e.g. get_or_set and decr, are built on these).
for _name in ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many", "delete_many",
              "clear"):
    setattr(FallbackRedisCache, _name, _through_fallback(_name))
