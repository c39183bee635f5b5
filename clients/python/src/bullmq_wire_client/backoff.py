"""Reconnect delays: exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, initial: float = 0.2, maximum: float = 10.0) -> float:
    """A random delay in [0, min(maximum, initial * 2**attempt)), seconds."""
    ceiling = min(maximum, initial * 2 ** min(attempt, 30))
    return random.uniform(0, ceiling)
