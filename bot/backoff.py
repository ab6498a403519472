"""Waiting before a retry: exponential backoff with full jitter, capped.

Used by every client that retries a remote service (Gemini on Vertex AI, a Janus
server, a WHEP endpoint), so that many clients that failed together do not retry
together.
"""

from __future__ import annotations


def backoff_secs(retry: int, initial_secs: float, max_secs: float, u: float) -> float:
    """The wait before retry ``retry`` (1, 2, ...): full jitter, ``u`` uniform in [0, 1)."""
    return u * min(max_secs, initial_secs * 2.0 ** (retry - 1))
