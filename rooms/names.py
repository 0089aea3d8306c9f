"""Guest names must not pass for registered accounts (staff included)."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

logger = logging.getLogger(__name__)


def _account_exists(name: str) -> bool:
    model = get_user_model()
    lookup = {f"{model.USERNAME_FIELD}__iexact": name}
    return model.objects.filter(**lookup).exists()


async def name_is_reserved(name: str) -> bool:
    """True when a registered account has this name (case-insensitive). A database that does
    not answer does not block renaming: the chat goes on."""
    try:
        return await database_sync_to_async(_account_exists)(name)
    except Exception:
        logger.warning("could not check a guest name against the accounts", exc_info=True)
        return False
