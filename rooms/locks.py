"""Whether a room refuses sends (staff locked or closed it), cached briefly per gateway.

The lock lives in the database; a send must not cost a database round trip, so each
gateway remembers the answer for LOCK_CACHE_S. A lock therefore takes effect on every
gateway within that many seconds.
"""

from __future__ import annotations

import logging
import time

from channels.db import database_sync_to_async

from rooms.services import room_is_locked

logger = logging.getLogger(__name__)

LOCK_CACHE_S = 2.0
MAX_CACHED_ROOMS = 10_000  # bounded: past it the cache starts over

_cache: dict[str, tuple[bool, float]] = {}


async def refuses_sends(room: str) -> bool:
    now = time.monotonic()
    cached = _cache.get(room)
    if cached is not None and cached[1] > now:
        return cached[0]
    try:
        locked = await database_sync_to_async(room_is_locked)(room_id=room)
    except Exception:
        # The database is away: keep the last answer (or let chat go on), never fail the send.
        logger.warning("could not read the lock of a room; using the last known state", exc_info=True)
        return cached[0] if cached is not None else False
    if len(_cache) >= MAX_CACHED_ROOMS:
        _cache.clear()
    _cache[room] = (locked, now + LOCK_CACHE_S)
    return locked


def forget_locks() -> None:
    """For tests."""
    _cache.clear()
