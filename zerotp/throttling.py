"""Per-key rate limits (API_RATE_LIMIT, e.g. `100/s`), counted in the shared cache so that
every gunicorn worker and every machine agree. Requests without a valid key (the public
catalogue, a missing or guessed key) are counted per client address."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from zerotp import errors
from zerotp.client_address import client_address
from zerotp.rates import parse_rate


def cache_count(counter: str, *, window_seconds: int) -> int:
    """Add one to a counter in the shared cache that is forgotten `window_seconds` after its
    first count; the count now (cache add, then incr)."""
    cache.add(counter, 0, timeout=window_seconds)
    try:
        return cache.incr(counter)
    except ValueError:  # it expired between add and incr
        cache.set(counter, 1, timeout=window_seconds)
        return 1


class KeyRateThrottle(BaseThrottle):
    """A fixed window per key, or per client address for requests without a valid key."""

    def allow_request(self, request: Request, view: object) -> bool:
        rate = parse_rate(settings.API_RATE_LIMIT)
        if rate is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        record = request.auth
        who = f"key:{record.pk}" if record is not None else f"ip:{client_address(request)}"
        used = cache_count(f"ratelimit:{who}:{period}:{window}", window_seconds=period * 2)
        if used > limit:
            raise errors.RateLimited(
                f"More than {limit} requests per {period} s; slow down.",
                retry_after=max(1, int(period - (now % period)) or 1),
            )
        return True
