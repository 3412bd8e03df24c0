"""Reading `youtube_videos` values fast, with the same verdict as `VideoSnapshot.from_bytes`.

The change engine reads every snapshot ever polled; building a pydantic model per record was
the largest part of its per-record cost. `Snapshot.from_bytes` first tries a strict
`msgspec` decoder (C code, about 0.3 µs a record) and accepts its result only when it is
certainly what pydantic would have produced:

- every field has exactly the JSON type the contract names (strings are strings, counts are
  non-negative integers or null: no ``"5"``, ``5.0`` or ``true`` coerced the way pydantic's
  lax mode does),
- ``video_id`` matches the contract's pattern,
- ``polled_at`` is already in the contract's canonical form ``YYYY-MM-DDTHH:MM:SSZ`` and a
  real instant (checked once per distinct string: a poll's snapshots share it).

Anything else, valid or not, goes to `VideoSnapshot.from_bytes`: it either accepts the value
(and we copy the model into a `Snapshot`) or raises `MessageError` with pydantic's reason,
which sends the record to the dead-letter topic. So the fast path never accepts a value the
model would refuse, nor changes what an accepted value means; the tests hold this for
arbitrary and for hand-picked edge-case inputs.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated

import msgspec

from tubewatch.messages import VideoSnapshot, format_timestamp

_Count = Annotated[int, msgspec.Meta(ge=0)] | None

# Python's ``$`` also matches before a final newline; ``fullmatch`` does not (like pydantic).
VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """The fields of a `VideoSnapshot` the engine uses, ``polled_at`` as its contract text.

    ``gc=False``: a snapshot holds only strings and ints, no cycles to track.
    """

    video_id: str
    title: str
    likes: _Count
    comments: _Count
    polled_at: str
    channel_title: str | None = None
    thumbnail: str | None = None
    views: _Count = None
    favorites: _Count = None

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Snapshot:
        """Parse a `youtube_videos` value; raises `MessageError` exactly when the model does."""
        if raw is not None:
            try:
                snapshot = fast_decode(raw)
            except (msgspec.DecodeError, ValueError):  # ValueError: bytes that are not UTF-8
                pass
            else:
                if VIDEO_ID.fullmatch(snapshot.video_id) and is_canonical(snapshot.polled_at):
                    return snapshot
        return cls.from_model(VideoSnapshot.from_bytes(raw))

    @classmethod
    def from_model(cls, model: VideoSnapshot) -> Snapshot:
        return cls(
            video_id=model.video_id,
            title=model.title,
            likes=model.likes,
            comments=model.comments,
            polled_at=format_timestamp(model.polled_at),
            channel_title=model.channel_title,
            thumbnail=model.thumbnail,
            views=model.views,
            favorites=model.favorites,
        )


fast_decode = msgspec.json.Decoder(Snapshot).decode


@lru_cache(maxsize=4096)
def is_canonical(text: str) -> bool:
    """Whether ``text`` is a timezone-aware instant the contract would write back unchanged."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return False
    return moment.tzinfo is not None and format_timestamp(moment) == text
