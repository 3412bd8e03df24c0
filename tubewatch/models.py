"""Database tables shared by the services (SQLModel).

Ownership: every watch, subscription and delivery carries the ``owner`` of the API key that
made it; queries always filter on it. Who writes what:

- api: ApiKey, Watch, Subscription (targets encrypted with `tubewatch.secrets.TargetCipher`)
- poller: WatchVideo (playlist membership), Video (latest snapshot), QuotaDay, Watch.status
- notifier: Delivery
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from tubewatch.messages import utc_now


class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True, description="keys minted with the same --name share an owner")
    key_hash: str = Field(unique=True, description="sha256 of the key; the key is shown once")
    prefix: str = Field(description="first characters of the key, to tell keys apart")
    created_at: datetime = Field(default_factory=utc_now)
    revoked: bool = False
    last_used_at: datetime | None = Field(
        default=None, description="when the key last authenticated (to the minute)"
    )


class Watch(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)
    kind: str = Field(description="playlist | video")
    playlist_id: str | None = Field(default=None, index=True)
    video_id: str | None = Field(default=None, index=True)
    label: str | None = None
    paused: bool = False
    status: str = Field(default="active", description="active | error")
    error: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class Subscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)
    watch_id: int = Field(foreign_key="watch.id", index=True, ondelete="CASCADE")
    targets: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False),
        description="apprise URLs, each encrypted with TargetCipher",
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["likes", "comments"], sa_column=Column(JSON, nullable=False)
    )
    min_delta: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    paused: bool = False
    created_at: datetime = Field(default_factory=utc_now)


class WatchVideo(SQLModel, table=True):
    """Which videos a watch covers (a video watch covers itself)."""

    watch_id: int = Field(foreign_key="watch.id", primary_key=True, ondelete="CASCADE")
    video_id: str = Field(primary_key=True, index=True)
    position: int | None = None


class Video(SQLModel, table=True):
    """The latest snapshot of each polled video."""

    video_id: str = Field(primary_key=True)
    title: str | None = None
    channel_title: str | None = None
    thumbnail: str | None = None
    # BIGINT: view counts pass 2**31 (PostgreSQL's INTEGER) on the biggest videos.
    likes: int | None = Field(default=None, sa_type=BigInteger)
    comments: int | None = Field(default=None, sa_type=BigInteger)
    views: int | None = Field(default=None, sa_type=BigInteger)
    status: str = Field(default="ok", description="ok | missing (deleted or private)")
    polled_at: datetime | None = None


class QuotaDay(SQLModel, table=True):
    """YouTube quota units spent on one Pacific-time day."""

    day: str = Field(primary_key=True, description="YYYY-MM-DD in America/Los_Angeles")
    units_used: int = 0
    exhausted_until: datetime | None = None
    updated_at: datetime = Field(default_factory=utc_now)


class Delivery(SQLModel, table=True):
    """One change event sent (or being sent) to one subscription."""

    __table_args__ = (UniqueConstraint("event_id", "subscription_id"),)

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)
    subscription_id: int = Field(index=True)
    event_id: str = Field(description="the change's identity: video_id@polled_at")
    video_id: str
    status: str = Field(default="retrying", description="delivered | retrying | failed | dead")
    attempts: int = 0
    error: str | None = None
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    next_attempt_at: datetime | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    delivered_at: datetime | None = None
