"""``/deliveries``: the delivery log the notifier writes, the caller's rows only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from tubewatch.api.deps import CurrentOwner, SessionDep
from tubewatch.api.schemas import AUTH_ERRORS, MAX_ID, DeliveryPublic
from tubewatch.models import Delivery
from tubewatch.secrets import redact_query_secrets

router = APIRouter(prefix="/deliveries", tags=["deliveries"], responses=AUTH_ERRORS)


@router.get("", response_model=list[DeliveryPublic])
def list_deliveries(
    session: SessionDep,
    owner: CurrentOwner,
    subscription_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryPublic]:
    """Newest first. Another owner's subscription id yields an empty list, never its rows."""
    query = select(Delivery).where(Delivery.owner == owner)
    if subscription_id is not None:
        query = query.where(Delivery.subscription_id == subscription_id)
    rows = session.exec(query.order_by(col(Delivery.id).desc()).limit(limit)).all()
    return [
        DeliveryPublic(
            id=row.id,
            subscription_id=row.subscription_id,
            event_id=row.event_id,
            video_id=row.video_id,
            status=row.status,
            attempts=row.attempts,
            error=redact_query_secrets(row.error) if row.error else None,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            delivered_at=row.delivered_at,
        )
        for row in rows
    ]
