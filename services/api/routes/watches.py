"""``/watches``: what to poll (a playlist or one video), and the latest counts it covers.

The poller re-reads active, unpaused watches and their `WatchVideo` rows from the database
every cycle, so a watch created or deleted here reaches it without a restart.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlmodel import Session, col, delete, select

from tubewatch.api.deps import CipherDep, CurrentOwner, SessionDep, SettingsDep, not_found
from tubewatch.api.routes.subscriptions import (
    encrypt_targets,
    new_subscription,
    subscription_public,
)
from tubewatch.api.schemas import (
    OWNED_ERRORS,
    Id,
    VideoPublic,
    WatchCreate,
    WatchPublic,
    WatchUpdate,
)
from tubewatch.messages import utc_now
from tubewatch.models import Subscription, Video, Watch, WatchVideo
from tubewatch.secrets import TargetCipher

router = APIRouter(prefix="/watches", tags=["watches"], responses=OWNED_ERRORS)


def owned_watch(session: Session, owner: str, watch_id: int) -> Watch:
    watch = session.get(Watch, watch_id)
    if watch is None or watch.owner != owner:
        raise not_found("watch")
    return watch


def watch_public(session: Session, watch: Watch, cipher: TargetCipher) -> WatchPublic:
    subscriptions = session.exec(
        select(Subscription)
        .where(Subscription.watch_id == watch.id, Subscription.owner == watch.owner)
        .order_by(Subscription.id)
    ).all()
    return WatchPublic(
        id=watch.id,
        kind=watch.kind,
        playlist_id=watch.playlist_id,
        video_id=watch.video_id,
        label=watch.label,
        paused=watch.paused,
        status=watch.status,
        error=watch.error,
        created_at=watch.created_at,
        subscriptions=[subscription_public(s, cipher) for s in subscriptions],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WatchPublic)
def create_watch(
    body: WatchCreate,
    session: SessionDep,
    owner: CurrentOwner,
    settings: SettingsDep,
    cipher: CipherDep,
) -> WatchPublic:
    """Creates a watch, its own video membership (video watches), and the inline subscription.

    All in one transaction: a bad target leaves no watch behind.
    """
    targets = encrypt_targets(body.notify, settings, cipher) if body.notify else None
    watch = Watch(
        owner=owner,
        kind="playlist" if body.playlist_id else "video",
        playlist_id=body.playlist_id,
        video_id=body.video_id,
        label=body.label,
    )
    session.add(watch)
    session.flush()
    if body.video_id:
        session.add(WatchVideo(watch_id=watch.id, video_id=body.video_id))
    if targets:
        session.add(new_subscription(owner, watch.id, targets, body.metrics, body.min_delta))
    session.commit()
    return watch_public(session, watch, cipher)


@router.get("", response_model=list[WatchPublic])
def list_watches(session: SessionDep, owner: CurrentOwner, cipher: CipherDep) -> list[WatchPublic]:
    rows = session.exec(select(Watch).where(Watch.owner == owner).order_by(Watch.id)).all()
    return [watch_public(session, row, cipher) for row in rows]


@router.get("/{watch_id}", response_model=WatchPublic)
def get_watch(
    watch_id: Id, session: SessionDep, owner: CurrentOwner, cipher: CipherDep
) -> WatchPublic:
    return watch_public(session, owned_watch(session, owner, watch_id), cipher)


@router.patch("/{watch_id}", response_model=WatchPublic)
def update_watch(
    watch_id: Id, body: WatchUpdate, session: SessionDep, owner: CurrentOwner, cipher: CipherDep
) -> WatchPublic:
    watch = owned_watch(session, owner, watch_id)
    changes = body.model_dump(exclude_unset=True)
    if "paused" in changes and changes["paused"] is not None:
        watch.paused = changes["paused"]
    if "label" in changes:
        watch.label = changes["label"]  # null clears the label
    watch.updated_at = utc_now()
    session.add(watch)
    session.commit()
    return watch_public(session, watch, cipher)


@router.delete("/{watch_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_watch(watch_id: Id, session: SessionDep, owner: CurrentOwner) -> Response:
    """Deletes the watch with its subscriptions and video memberships (the poller stops)."""
    watch = owned_watch(session, owner, watch_id)
    session.exec(delete(Subscription).where(col(Subscription.watch_id) == watch.id))
    session.exec(delete(WatchVideo).where(col(WatchVideo.watch_id) == watch.id))
    session.delete(watch)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{watch_id}/videos", response_model=list[VideoPublic])
def watch_videos(watch_id: Id, session: SessionDep, owner: CurrentOwner) -> list[VideoPublic]:
    """The latest snapshot of each video the watch covers (nulls until the first poll)."""
    watch = owned_watch(session, owner, watch_id)
    rows = session.exec(
        select(WatchVideo, Video)
        .join(Video, col(Video.video_id) == col(WatchVideo.video_id), isouter=True)
        .where(WatchVideo.watch_id == watch.id)
        .order_by(col(WatchVideo.position).is_(None), WatchVideo.position, WatchVideo.video_id)
    ).all()
    return [
        VideoPublic(
            video_id=member.video_id,
            position=member.position,
            title=video.title if video else None,
            channel_title=video.channel_title if video else None,
            thumbnail=video.thumbnail if video else None,
            likes=video.likes if video else None,
            comments=video.comments if video else None,
            views=video.views if video else None,
            status=video.status if video else None,
            polled_at=video.polled_at if video else None,
        )
        for member, video in rows
    ]
