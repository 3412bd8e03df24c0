"""API keys: minting, hashing and lookup.

Only the sha256 of a key is stored; the key itself is shown once, when it is minted. Keys
minted with the same name share an owner, so a user can rotate keys without losing data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from tubewatch.messages import utc_now
from tubewatch.models import ApiKey

KEY_PREFIX = "tw_"
OWNER_MAX_LEN = 100
TOUCH_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def mint_key(session: Session, owner: str) -> str:
    """Creates a key for ``owner`` and returns it (the only time it is ever visible)."""
    owner = owner.strip()
    if not owner or len(owner) > OWNER_MAX_LEN:
        raise ValueError(f"the name must be 1 to {OWNER_MAX_LEN} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(owner=owner, key_hash=hash_key(key), prefix=key[:10]))
    return key


def owner_for_key(session: Session, key: str, now: datetime | None = None) -> str | None:
    """The owner of a valid, unrevoked key; None otherwise.

    The lookup goes by hash (an index), and the final comparison is constant-time so the
    response time says nothing about how much of a hash matched. ``last_used_at`` is
    refreshed at most once a minute, so reads do not each cost a write.
    """
    digest = hash_key(key)
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked or not hmac.compare_digest(row.key_hash, digest):
        return None
    now = now or utc_now()
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if last is None or now - last >= TOUCH_EVERY:
        row.last_used_at = now
        session.add(row)
        session.commit()
    return row.owner
