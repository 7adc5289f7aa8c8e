"""Ids are PostgreSQL bigints: users, conversations and messages alike."""

from __future__ import annotations

#: the widest id a bigint column holds
MAX_ID = 2**63 - 1


def is_valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID
