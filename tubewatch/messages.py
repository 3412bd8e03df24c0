"""The two Kafka message types of CONTRACT.md, and their wire form.

Values are compact UTF-8 JSON with the fields in contract order, which is how ksqlDB
writes a JSON row: the change engine and ksqlDB produce the same bytes for the same input.
Keys are the video id as plain UTF-8.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainSerializer,
    ValidationError,
)

VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{11}$"
METRICS = ("likes", "comments", "views")


def format_timestamp(moment: datetime) -> str:
    """A UTC instant as the contract writes it: ``2026-11-28T12:00:00Z`` (seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# An instant with a timezone (naive ones are refused), written back as UTC ``...Z``.
UtcTimestamp = Annotated[
    AwareDatetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")
]


class MessageError(ValueError):
    """A Kafka value that is not a valid message of the expected type."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_name: ClassVar[str]

    @property
    def key(self) -> bytes:
        return self.video_id.encode()  # type: ignore[attr-defined]

    def to_bytes(self) -> bytes:
        """Compact JSON, fields in declaration order, non-ASCII as UTF-8 (as ksqlDB writes)."""
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Self:
        if raw is None:
            raise MessageError("empty value (tombstone)")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise MessageError(f"invalid {cls.schema_name}: {problems}") from None


Count = NonNegativeInt | None


class VideoSnapshot(_Message):
    """`youtube_videos`: one video's statistics at one poll."""

    schema_name: ClassVar[str] = "youtube_videos"

    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    title: str
    channel_title: str | None = None
    thumbnail: str | None = None
    likes: Count = Field(description="null when the owner hides likes")
    comments: Count = Field(description="null when comments are off")
    views: Count = None
    favorites: Count = None
    polled_at: UtcTimestamp


class VideoChange(_Message):
    """`video_changes`: a snapshot in which a count differs from the video's previous one."""

    schema_name: ClassVar[str] = "video_changes"

    video_id: str = Field(pattern=VIDEO_ID_PATTERN)
    title: str | None
    thumbnail: str | None = None
    likes_previous: Count = None
    likes_current: Count = None
    comments_previous: Count = None
    comments_current: Count = None
    views_previous: Count = None
    views_current: Count = None
    polled_at: UtcTimestamp

    def delta(self, metric: str) -> int | None:
        """current - previous for one metric, or None where either side is null."""
        previous = getattr(self, f"{metric}_previous")
        current = getattr(self, f"{metric}_current")
        if previous is None or current is None:
            return None
        return current - previous

    def changed_metrics(self) -> list[str]:
        """The metrics whose count moved (a null on either side is not a change)."""
        return [m for m in METRICS if self.delta(m)]


MESSAGE_TYPES: tuple[type[_Message], ...] = (VideoSnapshot, VideoChange)
