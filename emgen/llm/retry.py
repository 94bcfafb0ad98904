"""Which failures of an OpenAI-compatible endpoint are worth retrying, and how long to wait."""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass

import openai

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_KEY_LIKE = re.compile(r"\b(?:sk|key|pk|rk)-[A-Za-z0-9_*\-]{4,}")
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured|guided|schema", re.IGNORECASE)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt k waits between half and all of base * 2**k (capped)."""

    base: float = 1.0
    cap: float = 60.0
    max_retry_after: float = 600.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after)
            return wait + rng.uniform(0, 0.1 * wait)
        ceiling = min(self.cap, self.base * 2**attempt)
        return rng.uniform(ceiling / 2, ceiling)


def retry_after(headers: object) -> float | None:
    """Seconds from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date), if present."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    value = get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_transient(exc: Exception) -> bool:
    """Timeouts, dropped connections, 408/409/429/5xx: worth another try. A 429 for no quota is not."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429 and error_code(exc) == "insufficient_quota":
            return False
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return False


def rejects_format(exc: Exception) -> bool:
    """A 400/422 that complains about ``response_format``: the endpoint lacks that structured-output mode."""
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422):
        return False
    return bool(_FORMAT_WORDS.search(str(exc.message)) or _FORMAT_WORDS.search(str(exc.body)))


def error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            code = inner.get("code")
            return str(code) if code is not None else None
    return None


def describe(exc: Exception, secret: str | None = None) -> str:
    """One line saying what went wrong, with anything that looks like a key masked."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = ""
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = str(inner.get("message", "")) if isinstance(inner, dict) else str(inner)
        text = f"HTTP {exc.status_code}" + (f": {message}" if message else "")
    elif isinstance(exc, openai.APITimeoutError):
        text = "the request timed out"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = "the connection failed" + (f" ({type(cause).__name__})" if cause else "")
    else:
        text = f"{type(exc).__name__}: {exc}"
    if secret:
        text = text.replace(secret, "***")
    text = _KEY_LIKE.sub("***", text)
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
