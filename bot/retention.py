"""Retention: meetings are deleted ``privacy.retention_days`` after their last activity.

A meeting's last activity is when the host ended it; if it was never ended, the latest of
its creation and its participants' joining and leaving. A meeting with someone connected
is never purged. ``retention_days = 0`` keeps meetings until they are deleted.

The server runs :func:`purge_periodically` (at start, then every
``privacy.purge_interval_secs``); ``meetmood meeting purge`` runs the same selection
against the database (:meth:`bot.store.Store.expired_meetings`). Event loop only.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.meeting import MeetingManager
from bot.settings import PrivacySettings

log = logging.getLogger(__name__)

SECS_PER_DAY = 86_400.0


def cutoff(now: float, days: float) -> float:
    """The time before which a meeting's last activity makes it expired."""
    return now - days * SECS_PER_DAY


async def purge_once(manager: MeetingManager, settings: PrivacySettings) -> int:
    """Delete the meetings past retention now; returns how many (0 when retention is off)."""
    if settings.retention_days <= 0:
        return 0
    purged = await manager.purge_expired(cutoff(time.time(), settings.retention_days))
    if purged:
        log.info("expired meetings deleted", extra={"count": len(purged)})
    return len(purged)


async def purge_periodically(manager: MeetingManager, settings: PrivacySettings) -> None:
    """Purge at once, then every ``purge_interval_secs``, until cancelled.

    A failed run is logged and retried at the next interval; it never stops the loop.
    """
    while True:
        try:
            await purge_once(manager, settings)
        except Exception:
            log.exception("deleting expired meetings failed")
        await asyncio.sleep(settings.purge_interval_secs)
