"""The change rule, with no I/O: previous state and a snapshot in, new state and maybe a change out.

It mirrors `ksql/statements.sql` exactly (CONTRACT.md, `video_changes`):

- Per video we keep the counts of its latest snapshot. That is what ksqlDB's
  ``LATEST_BY_OFFSET(x, 2, false)[-2]`` will hold when the next snapshot arrives.
- ``ignoreNulls`` is false: a null count (hidden likes, comments off) takes its place in the
  pair like any value, so null -> 5 and 5 -> null are not changes and 5 -> null -> 5 is not
  either.
- A change is a snapshot where some count differs from the previous one and neither side is
  null. The first snapshot of a video has no previous one: never a change.
- The emitted row carries all three pairs (a metric that did not move has equal previous and
  current, or nulls) plus the current snapshot's title, thumbnail and polled_at.
- Order is the input's offset order per video, whatever ``polled_at`` says.

The state also remembers the input offset it was built from, so a snapshot re-read after a
crash (at-least-once delivery) is recognised as already applied instead of being compared
with its own successor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tubewatch.messages import VideoChange, VideoSnapshot


@dataclass(frozen=True, slots=True)
class VideoState:
    """One video's counts in its latest snapshot, and that snapshot's input offset."""

    likes: int | None
    comments: int | None
    views: int | None
    offset: int

    def to_bytes(self) -> bytes:
        """Compact JSON, the value of the state changelog topic and of the database row."""
        return json.dumps(
            [self.likes, self.comments, self.views, self.offset], separators=(",", ":")
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> VideoState:
        likes, comments, views, offset = json.loads(raw)
        return cls(likes, comments, views, offset)


def _moved(previous: int | None, current: int | None) -> bool:
    """SQL's ``previous <> current`` where a comparison with NULL is never true."""
    return previous is not None and current is not None and previous != current


def apply_snapshot(
    state: VideoState | None, snapshot: VideoSnapshot, offset: int
) -> tuple[VideoState, VideoChange | None]:
    """The video's new state after ``snapshot`` (read at input ``offset``), and its change if any.

    A snapshot at or before the offset the state was built from was applied already: the
    state is returned unchanged and nothing is reported again.
    """
    if state is not None and offset <= state.offset:
        return state, None
    new_state = VideoState(snapshot.likes, snapshot.comments, snapshot.views, offset)
    if state is None or not (
        _moved(state.likes, snapshot.likes)
        or _moved(state.comments, snapshot.comments)
        or _moved(state.views, snapshot.views)
    ):
        return new_state, None
    # The inputs were validated when the snapshot was parsed: skip re-validating them.
    change = VideoChange.model_construct(
        video_id=snapshot.video_id,
        title=snapshot.title,
        thumbnail=snapshot.thumbnail,
        likes_previous=state.likes,
        likes_current=snapshot.likes,
        comments_previous=state.comments,
        comments_current=snapshot.comments,
        views_previous=state.views,
        views_current=snapshot.views,
        polled_at=snapshot.polled_at,
    )
    return new_state, change
