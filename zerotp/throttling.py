"""Per-key rate limits (API_RATE_LIMIT, e.g. `100/s`), counted in the shared cache so that
every gunicorn worker and every machine agree. Requests without a key (the public
catalogue) are counted per client address."""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from zerotp import errors
from zerotp.rates import parse_rate


class KeyRateThrottle(BaseThrottle):
    """A fixed window per key: simple, shared, and one cache round trip when Redis is used."""

    def allow_request(self, request: Request, view: object) -> bool:
        rate = parse_rate(settings.API_RATE_LIMIT)
        if rate is None:
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        record = request.auth
        who = f"key:{record.pk}" if record is not None else f"ip:{self.get_ident(request)}"
        counter = f"ratelimit:{who}:{period}:{window}"
        cache.add(counter, 0, timeout=period * 2)
        try:
            used = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.set(counter, 1, timeout=period * 2)
            used = 1
        if used > limit:
            raise errors.RateLimited(
                f"More than {limit} requests per {period} s; slow down.",
                retry_after=max(1, int(period - (now % period)) or 1),
            )
        return True
