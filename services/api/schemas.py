"""Request and response bodies (Base / Create / Update / Public variants).

Every input is bounded (string lengths, list lengths, number ranges) and checked for shape
here, so a bad request is a 422 that names the field, before any route code runs. Whether a
target is a usable apprise URL is checked in the routes (it depends on the settings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    model_validator,
)

from tubewatch.messages import format_timestamp

Metric = Literal["likes", "comments", "views"]
METRICS: tuple[str, ...] = ("likes", "comments", "views")
DEFAULT_METRICS: list[str] = ["likes", "comments"]

MAX_TARGETS = 20
MAX_TARGET_LEN = 2048
MAX_LABEL_LEN = 200
MAX_DELTA = 10**12
# Database ids: PostgreSQL's INTEGER is 32-bit, so larger numbers can never name a row.
MAX_ID = 2**31 - 1


def _encodable(value: str) -> str:
    """Refuses lone surrogates, which no database or URL can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode") from None
    return value


# Printable text (no control characters, no NUL: PostgreSQL refuses NUL in text).
Label = Annotated[
    str,
    Field(max_length=MAX_LABEL_LEN, pattern=r"^[^\x00-\x1f\x7f]*$"),
    AfterValidator(_encodable),
]
# YouTube playlist ids: a kind prefix (PL user playlist, UU uploads, LL/FL likes, OL album,
# RD mix, UL) and URL-safe base64. Real ids are 18-34 characters; the length is kept lenient
# so short simulator ids (PLdemo) work too.
PlaylistId = Annotated[
    str,
    Field(
        pattern=r"^(PL|UU|LL|FL|OL|RD|UL)[A-Za-z0-9_-]{1,62}$",
        examples=["PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG"],
    ),
]
# YouTube video ids: exactly 11 URL-safe base64 characters.
VideoId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{11}$", examples=["Tk23kQRFWcw"])]
Target = Annotated[
    str,
    Field(min_length=1, max_length=MAX_TARGET_LEN, pattern=r"^[^\x00-\x1f\x7f]+$"),
    AfterValidator(_encodable),
]
Targets = Annotated[list[Target], Field(min_length=1, max_length=MAX_TARGETS)]
Metrics = Annotated[list[Metric], Field(min_length=1, max_length=len(METRICS))]
# Strict in bodies: "10" or true is a wrong JSON type (422), not a number to guess at.
MinDelta = Annotated[
    dict[Metric, Annotated[StrictInt, Field(ge=0, le=MAX_DELTA)]], Field(max_length=3)
]
# Ids in paths and query strings arrive as text; in a JSON body an id must be a number.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
BodyId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


def _as_utc(moment: datetime) -> str:
    """SQLite returns naive datetimes; they were always stored as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)


Timestamp = Annotated[datetime, PlainSerializer(_as_utc, return_type=str)]


def followed_metrics(base: list[str], min_delta: dict[str, int] | None) -> list[str]:
    """``base`` plus the metrics ``min_delta`` names: a threshold means "follow this metric".

    Used where the caller gave no ``metrics`` (CONTRACT.md's own example is ``"min_delta":
    {"views": 1000}`` with the default metrics); explicit ``metrics`` are taken as given.
    """
    extra = [metric for metric in METRICS if metric in (min_delta or {}) and metric not in base]
    return [*base, *extra]


def _check_metrics(metrics: list[str] | None, min_delta: dict[str, int] | None) -> None:
    if metrics is not None and len(set(metrics)) != len(metrics):
        raise ValueError("metrics must not repeat")
    if min_delta and metrics is not None:
        unknown = sorted(set(min_delta) - set(metrics))
        if unknown:
            raise ValueError(f"min_delta names metrics not in metrics: {', '.join(unknown)}")


class _Input(BaseModel):
    # Unknown fields are refused: a typo ("notfiy") must not silently drop the alerts.
    model_config = ConfigDict(extra="forbid")


# --- subscriptions ----------------------------------------------------------------------


class SubscriptionBase(_Input):
    metrics: Metrics | None = Field(
        default=None,
        description="which counts alert (default likes and comments, plus any min_delta names)",
    )
    min_delta: MinDelta | None = Field(
        default=None, description="per metric, the smallest change that alerts"
    )


class SubscriptionCreate(SubscriptionBase):
    watch_id: BodyId
    notify: Targets = Field(description="apprise URLs")

    @model_validator(mode="after")
    def _metrics_agree(self) -> SubscriptionCreate:
        _check_metrics(self.metrics, self.min_delta)
        return self


class SubscriptionUpdate(SubscriptionBase):
    notify: Targets | None = Field(default=None, description="replaces the targets")
    paused: StrictBool | None = None

    @model_validator(mode="after")
    def _metrics_agree(self) -> SubscriptionUpdate:
        _check_metrics(self.metrics, self.min_delta)
        return self


class SubscriptionPublic(BaseModel):
    id: int
    watch_id: int
    targets: list[str] = Field(description="redacted: scheme and host only")
    metrics: list[str]
    min_delta: dict[str, int]
    paused: bool
    created_at: Timestamp


# --- watches ----------------------------------------------------------------------------


class WatchBase(_Input):
    label: Label | None = None


class WatchCreate(WatchBase):
    playlist_id: PlaylistId | None = None
    video_id: VideoId | None = None
    notify: Targets | None = Field(
        default=None, description="apprise URLs: also creates a subscription"
    )
    metrics: Metrics | None = None
    min_delta: MinDelta | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WatchCreate:
        if (self.playlist_id is None) == (self.video_id is None):
            raise ValueError("give exactly one of playlist_id and video_id")
        if self.notify is None and (self.metrics is not None or self.min_delta is not None):
            raise ValueError("metrics and min_delta belong to a subscription: give notify too")
        _check_metrics(self.metrics, self.min_delta)
        return self


class WatchUpdate(WatchBase):
    paused: StrictBool | None = None


class WatchPublic(BaseModel):
    id: int
    kind: Literal["playlist", "video"]
    playlist_id: str | None
    video_id: str | None
    label: str | None
    paused: bool
    status: str
    error: str | None
    created_at: Timestamp
    subscriptions: list[SubscriptionPublic]


class VideoPublic(BaseModel):
    """The latest snapshot the poller stored; counts are null until the first poll."""

    video_id: str
    position: int | None
    title: str | None
    channel_title: str | None
    thumbnail: str | None
    likes: int | None
    comments: int | None
    views: int | None
    status: str | None
    polled_at: Timestamp | None


# --- test sends and deliveries ------------------------------------------------------------


class TargetResult(BaseModel):
    target: str = Field(description="redacted")
    ok: bool
    error: str | None


class TestReport(BaseModel):
    delivered: bool = Field(description="true when every target accepted the test alert")
    results: list[TargetResult]


class DeliveryPublic(BaseModel):
    id: int
    subscription_id: int
    event_id: str
    video_id: str
    status: str = Field(description="delivered | retrying | failed | dead")
    attempts: int
    error: str | None
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: Timestamp | None


class QuotaPublic(BaseModel):
    """What `tubewatch.quota.quota_report` returns (fields it adds later pass through)."""

    model_config = ConfigDict(extra="allow")

    day: str
    units_used_today: int
    units_per_day: int
    projected_units_today: int
    exhausted_until: str | None
    resets_at: str


class ErrorPublic(BaseModel):
    """Every error the API answers: ``{"detail": ...}`` (CONTRACT.md, "REST API")."""

    detail: str


# Documented answers (OpenAPI) of the routes behind an API key, and of those reaching an
# owner's object by id: another owner's object is a 404, exactly like a missing one.
AUTH_ERRORS: dict[int | str, dict] = {
    401: {"model": ErrorPublic, "description": "no valid API key"},
}
OWNED_ERRORS: dict[int | str, dict] = {
    **AUTH_ERRORS,
    404: {"model": ErrorPublic, "description": "no such object for this key's owner"},
}
