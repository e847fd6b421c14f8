"""Retry schedule: exponential backoff with full jitter and a ceiling (pure)."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float = 0.5, ceiling: float = 60.0,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Full jitter: uniform in ``[cap/2, cap]`` where ``cap = min(ceiling, base * 2**(attempt-1))``,
    so retries spread out but never collapse to zero.
    """
    attempt = max(attempt, 1)
    cap = min(ceiling, base * (2 ** min(attempt - 1, 30)))
    r = (rng or random).random()
    return cap / 2 + r * cap / 2
