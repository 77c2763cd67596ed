"""Per-connection rate limits (``THROTTLE_RATES``) in DRF's rate syntax.

``THROTTLE_RATES`` is a rate for every frame (``"100/second"``), or a dict of rates
by event: ``{"default": "100/second", "create": "10/minute", "shop.Product.search":
"5/second"}``, where a key is an action (any stream) or a full event (no hash). A
frame over any rate that applies is answered with a 429 ``throttled`` error frame
saying how long to wait. The counts live in the connection: nothing is shared
between connections or processes.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from django.core.exceptions import ImproperlyConfigured

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"100/second"`` → ``(100, 1)``, as DRF reads rates."""
    try:
        count, period = rate.split("/")
        count = int(count)
        if count < 0:
            raise ValueError(count)
        return count, PERIODS[period.strip()[0].lower()]
    except (ValueError, KeyError, IndexError, AttributeError):
        raise ImproperlyConfigured(
            f"Invalid rate {rate!r} in CHANNELS_BINDING['THROTTLE_RATES']: write "
            '"<count>/<second|minute|hour|day>", e.g. "100/second".'
        ) from None


class ConnectionThrottle:
    """Sliding windows of recent frame times, one per rate that applies."""

    def __init__(self, rates: Any) -> None:
        if isinstance(rates, str):
            rates = {"default": rates}
        self.rates = {key: parse_rate(rate) for key, rate in (rates or {}).items()}
        self.history: dict[str, deque[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.rates)

    def wait(self, event: str | None) -> float | None:
        """Seconds to wait if this frame is over a limit, else ``None`` (and the
        frame is counted)."""
        now = time.monotonic()
        base = (event or "").partition("#")[0]
        keys = ["default", base, base.rpartition(".")[2]]
        applying = [key for key in dict.fromkeys(keys) if key in self.rates]
        longest = 0.0
        for key in applying:
            count, period = self.rates[key]
            history = self.history.setdefault(key, deque())
            while history and history[0] <= now - period:
                history.popleft()
            if len(history) >= count:
                # A "0/<period>" rate refuses every frame: wait a whole period.
                oldest = history[0] if history else now
                longest = max(longest, oldest + period - now)
        if longest > 0:
            return longest
        for key in applying:
            self.history[key].append(now)
        return None
