"""``/quota``: YouTube quota units spent today and the projected spend (shared by owners)."""

from __future__ import annotations

from fastapi import APIRouter

from tubewatch.api.deps import CurrentOwner, SessionDep, SettingsDep
from tubewatch.api.schemas import AUTH_ERRORS, QuotaPublic
from tubewatch.quota import quota_report

router = APIRouter(tags=["quota"], responses=AUTH_ERRORS)


@router.get("/quota", response_model=QuotaPublic)
def get_quota(session: SessionDep, settings: SettingsDep, owner: CurrentOwner) -> QuotaPublic:
    """One YouTube project's quota serves every owner, so this is the same for all keys."""
    del owner  # authentication only
    return QuotaPublic(**quota_report(session, settings))
