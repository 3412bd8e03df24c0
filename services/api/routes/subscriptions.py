"""``/subscriptions``: who gets alerted about a watch, through which targets, for what."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status
from sqlmodel import Session, select

from tubewatch.api.deps import CipherDep, CurrentOwner, SessionDep, SettingsDep, not_found
from tubewatch.api.schemas import (
    DEFAULT_METRICS,
    OWNED_ERRORS,
    Id,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionUpdate,
    TargetResult,
    TestReport,
    followed_metrics,
)
from tubewatch.models import Subscription, Watch
from tubewatch.secrets import TargetCipher, redact_target
from tubewatch.settings import Settings
from tubewatch.targets import TargetError, send_to_target, validate_target

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"], responses=OWNED_ERRORS)

TEST_TITLE = "tubewatch test alert"
TEST_BODY = "This is a test alert from tubewatch: this target works."


def encrypt_targets(
    urls: list[str], settings: Settings, cipher: TargetCipher, field: str = "notify"
) -> list[str]:
    """Validates every target (422 naming the bad ones, redacted) and encrypts them."""
    errors = []
    for index, url in enumerate(urls):
        try:
            validate_target(url, allow_private=settings.allow_private_targets)
        except TargetError as exc:
            errors.append({"loc": ["body", field, index], "msg": str(exc), "type": "target"})
    if errors:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors)
    return [cipher.encrypt(url) for url in urls]


def shown_targets(subscription: Subscription, cipher: TargetCipher) -> list[str]:
    """Targets as a response shows them: scheme and host only."""
    shown = []
    for token in subscription.targets:
        try:
            shown.append(redact_target(cipher.decrypt(token)))
        except ValueError:
            shown.append("***")  # encrypted with another SECRET_KEY
    return shown


def subscription_public(subscription: Subscription, cipher: TargetCipher) -> SubscriptionPublic:
    return SubscriptionPublic(
        id=subscription.id,
        watch_id=subscription.watch_id,
        targets=shown_targets(subscription, cipher),
        metrics=subscription.metrics,
        min_delta=subscription.min_delta,
        paused=subscription.paused,
        created_at=subscription.created_at,
    )


def owned_subscription(session: Session, owner: str, subscription_id: int) -> Subscription:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or subscription.owner != owner:
        raise not_found("subscription")
    return subscription


def new_subscription(
    owner: str,
    watch_id: int,
    targets: list[str],
    metrics: list[str] | None,
    min_delta: dict[str, int] | None,
) -> Subscription:
    return Subscription(
        owner=owner,
        watch_id=watch_id,
        targets=targets,
        metrics=list(metrics or followed_metrics(DEFAULT_METRICS, min_delta)),
        min_delta=dict(min_delta or {}),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubscriptionPublic)
def create_subscription(
    body: SubscriptionCreate,
    session: SessionDep,
    owner: CurrentOwner,
    settings: SettingsDep,
    cipher: CipherDep,
) -> SubscriptionPublic:
    watch = session.get(Watch, body.watch_id)
    if watch is None or watch.owner != owner:
        raise not_found("watch")
    targets = encrypt_targets(body.notify, settings, cipher)
    subscription = new_subscription(owner, watch.id, targets, body.metrics, body.min_delta)
    session.add(subscription)
    session.commit()
    return subscription_public(subscription, cipher)


@router.get("", response_model=list[SubscriptionPublic])
def list_subscriptions(
    session: SessionDep, owner: CurrentOwner, cipher: CipherDep
) -> list[SubscriptionPublic]:
    rows = session.exec(
        select(Subscription).where(Subscription.owner == owner).order_by(Subscription.id)
    ).all()
    return [subscription_public(row, cipher) for row in rows]


@router.get("/{subscription_id}", response_model=SubscriptionPublic)
def get_subscription(
    subscription_id: Id, session: SessionDep, owner: CurrentOwner, cipher: CipherDep
) -> SubscriptionPublic:
    return subscription_public(owned_subscription(session, owner, subscription_id), cipher)


@router.patch("/{subscription_id}", response_model=SubscriptionPublic)
def update_subscription(
    subscription_id: Id,
    body: SubscriptionUpdate,
    session: SessionDep,
    owner: CurrentOwner,
    settings: SettingsDep,
    cipher: CipherDep,
) -> SubscriptionPublic:
    subscription = owned_subscription(session, owner, subscription_id)
    min_delta = body.min_delta if body.min_delta is not None else subscription.min_delta
    if body.metrics is not None:
        metrics = body.metrics  # explicit: must cover min_delta (checked below)
    else:  # a new threshold on a metric not followed yet starts following it
        metrics = followed_metrics(list(subscription.metrics), body.min_delta)
    unknown = sorted(set(min_delta) - set(metrics))
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "min_delta"],
                    "msg": f"min_delta names metrics not in metrics: {', '.join(unknown)}",
                    "type": "value_error",
                }
            ],
        )
    if body.notify is not None:
        subscription.targets = encrypt_targets(body.notify, settings, cipher)
    subscription.metrics = list(metrics)
    subscription.min_delta = dict(min_delta)
    if body.paused is not None:
        subscription.paused = body.paused
    session.add(subscription)
    session.commit()
    return subscription_public(subscription, cipher)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(subscription_id: Id, session: SessionDep, owner: CurrentOwner) -> Response:
    session.delete(owned_subscription(session, owner, subscription_id))
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{subscription_id}/test", response_model=TestReport)
def test_subscription(
    subscription_id: Id,
    session: SessionDep,
    owner: CurrentOwner,
    settings: SettingsDep,
    cipher: CipherDep,
) -> TestReport:
    """Sends a test alert to every target now and reports each outcome (redacted).

    A sync route: apprise blocks, so FastAPI runs this in its thread pool.
    """
    subscription = owned_subscription(session, owner, subscription_id)
    results = []
    for token in subscription.targets:
        try:
            url = cipher.decrypt(token)
        except ValueError as exc:
            results.append(TargetResult(target="***", ok=False, error=str(exc)))
            continue
        sent = send_to_target(url, TEST_TITLE, TEST_BODY, settings.allow_private_targets)
        results.append(TargetResult(target=sent.target, ok=sent.ok, error=sent.error))
    return TestReport(delivered=bool(results) and all(r.ok for r in results), results=results)
