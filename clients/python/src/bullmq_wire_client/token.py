"""Tokens: a string, or a function (sync or async) returning a fresh one."""

from __future__ import annotations

import base64
import inspect
import json
import time
from typing import Awaitable, Callable, Optional, Union

TokenSource = Union[str, Callable[[], Union[str, Awaitable[str]]]]


async def resolve_token(source: TokenSource) -> str:
    if isinstance(source, str):
        return source
    value = source()
    if inspect.isawaitable(value):
        value = await value
    return str(value)


def token_expiry(token: str) -> Optional[float]:
    """The ``exp`` claim of a JWT (seconds since the epoch), or None when it cannot be read."""
    parts = token.split(".")
    if len(parts) < 2:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        exp = json.loads(base64.urlsafe_b64decode(payload)).get("exp")
    except (ValueError, AttributeError):
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def refresh_delay(exp: float, now: Optional[float] = None) -> float:
    """When to refresh a token expiring at ``exp``: a fifth of its life early, at most a minute."""
    left = exp - (time.time() if now is None else now)
    return max(1.0, left - min(60.0, left / 5))
