"""The pure change rule (tubewatch.changes.logic), checked case by case and against a literal
model of the ksqlDB statements (LATEST_BY_OFFSET(x, 2, false), [-2] <> [-1])."""

from __future__ import annotations

import gc

from hypothesis import given, settings
from hypothesis import strategies as st

from tubewatch.changes.logic import VideoState, apply_snapshot
from tubewatch.messages import VideoChange, VideoSnapshot

A = "Tk23kQRFWcw"
B = "dQw4w9WgXcQ"


def snap(likes, comments=1, views=100, video_id=A, minute=0, thumbnail="https://t/x.jpg"):
    return VideoSnapshot(
        video_id=video_id,
        title=f"title {video_id} {minute}",
        thumbnail=thumbnail,
        likes=likes,
        comments=comments,
        views=views,
        polled_at=f"2026-11-28T12:{minute:02d}:00Z",
    )


def run(snapshots):
    """Feed snapshots in offset order; returns the changes (video_id, metric pairs)."""
    states: dict[str, VideoState] = {}
    out = []
    for offset, s in enumerate(snapshots):
        new, change = apply_snapshot(states.get(s.video_id), s, offset)
        states[s.video_id] = new
        if change is not None:
            out.append(change)
    return out


def pairs(change: VideoChange):
    return (
        (change.likes_previous, change.likes_current),
        (change.comments_previous, change.comments_current),
        (change.views_previous, change.views_current),
    )


def test_first_snapshot_is_no_change():
    assert run([snap(10)]) == []


def test_a_like_is_a_change_with_every_pair_present():
    [change] = run([snap(10), snap(11, minute=1)])
    assert pairs(change) == ((10, 11), (1, 1), (100, 100))
    assert change.polled_at == snap(11, minute=1).polled_at
    assert change.title == "title Tk23kQRFWcw 1"  # the current snapshot's title


def test_comment_and_views_changes():
    assert [pairs(c) for c in run([snap(10), snap(10, comments=2)])] == [
        ((10, 10), (1, 2), (100, 100))
    ]
    assert [pairs(c) for c in run([snap(10), snap(10, views=99)])] == [
        ((10, 10), (1, 1), (100, 99))
    ]


def test_identical_snapshot_is_no_change():
    assert run([snap(10), snap(10), snap(10)]) == []


def test_null_on_either_side_is_not_a_change_and_the_pair_shifts():
    # 10 -> null -> 10: neither step compares two numbers.
    assert run([snap(10), snap(None), snap(10)]) == []
    # null -> 5 after a hidden phase, then 5 -> 6 is a change against 5.
    [change] = run([snap(None), snap(5), snap(6)])
    assert pairs(change)[0] == (5, 6)


def test_null_counts_travel_in_a_change_of_another_metric():
    [change] = run([snap(None, comments=None), snap(None, comments=None, views=200)])
    assert pairs(change) == ((None, None), (None, None), (100, 200))
    assert b'"likes_previous":null' in change.to_bytes()


def test_videos_are_independent():
    changes = run([snap(1), snap(7, video_id=B), snap(2), snap(7, video_id=B)])
    assert [(c.video_id, pairs(c)[0]) for c in changes] == [(A, (1, 2))]


def test_offset_order_wins_over_polled_at():
    changes = run([snap(1, minute=5), snap(2, minute=1)])
    assert pairs(changes[0])[0] == (1, 2)


def test_replayed_offset_is_not_applied_again():
    state, _ = apply_snapshot(None, snap(1), 0)
    state, change = apply_snapshot(state, snap(2), 1)
    assert change is not None
    again, change = apply_snapshot(state, snap(2), 1)
    assert (again, change) == (state, None)
    older, change = apply_snapshot(state, snap(1), 0)
    assert (older, change) == (state, None)


def test_state_bytes_round_trip():
    state = VideoState(None, 3, 2**40, 17)
    assert VideoState.from_bytes(state.to_bytes()) == state
    assert state.to_bytes() == b"[null,3,1099511627776,17]"  # compact, as the changelog had
    assert VideoState(10**30, 0, None, 0).to_bytes() == b"[%d,0,null,0]" % 10**30


def test_states_are_invisible_to_the_garbage_collector():
    """The engine holds one state per video; a tracked state (a NamedTuple was) made every
    full collection walk all of them."""
    first, _ = apply_snapshot(None, snap(1), 0)
    moved, _ = apply_snapshot(first, snap(2), 1)
    restored = VideoState.from_bytes(moved.to_bytes())
    assert not any(gc.is_tracked(state) for state in (first, moved, restored))
    states = {A: moved}
    assert not gc.is_tracked(states)  # so a dict of them is not walked either


def test_unmoved_counts_keep_the_state_and_its_verdicts():
    state, _ = apply_snapshot(None, snap(1), 0)
    kept, change = apply_snapshot(state, snap(1, minute=2), 5)
    assert kept is state and change is None  # no new state for an unmoved video
    moved, change = apply_snapshot(kept, snap(2, minute=3), 6)
    assert pairs(change)[0] == (1, 2) and moved.offset == 6


def test_constructed_change_serialises_like_a_validated_one():
    [change] = run([snap(10, thumbnail=None), snap(11, thumbnail=None)])
    assert change.to_bytes() == VideoChange.model_validate(change.model_dump()).to_bytes()
    assert list(change.model_dump()) == list(VideoChange.model_fields)


def ksqldb_model(snapshots):
    """A literal model of ksql/statements.sql: per key, the last two values of each count
    (ignoreNulls=false), then the filter [-2] <> [-1] where NULL compares as not true."""
    history: dict[str, dict[str, list]] = {}
    out = []
    for s in snapshots:
        h = history.setdefault(s.video_id, {"likes": [], "comments": [], "views": []})
        row = {}
        for metric in ("likes", "comments", "views"):
            h[metric] = (h[metric] + [getattr(s, metric)])[-2:]
            arr = h[metric]
            row[metric] = (arr[-2] if len(arr) >= 2 else None, arr[-1])
        if any(p is not None and c is not None and p != c for p, c in row.values()):
            out.append((s.video_id, tuple(row.values()), s.polled_at))
    return out


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=3))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([A, B]), counts, counts, counts, st.integers(0, 59)),
        max_size=25,
    )
)
def test_engine_logic_equals_the_ksqldb_model(rows):
    snapshots = [
        snap(likes, comments, views, video_id=vid, minute=minute)
        for vid, likes, comments, views, minute in rows
    ]
    got = [(c.video_id, pairs(c), c.polled_at) for c in run(snapshots)]
    assert got == ksqldb_model(snapshots)


@settings(max_examples=300, deadline=None)
@given(
    title=st.text(),
    thumbnail=st.one_of(st.none(), st.text()),
    before=st.tuples(counts, counts, counts),
    after=st.tuples(counts, counts, counts),
    second=st.integers(0, 10**9),
)
def test_fast_change_bytes_equal_the_message_serialiser(title, thumbnail, before, after, second):
    from datetime import UTC, datetime

    from tubewatch.changes.logic import change_bytes, make_change

    snapshot = VideoSnapshot(
        video_id=A,
        title=title,
        thumbnail=thumbnail,
        likes=after[0],
        comments=after[1],
        views=after[2],
        polled_at=datetime.fromtimestamp(second, UTC),
    )
    previous = VideoState(*before, 0)
    assert change_bytes(previous, snapshot) == make_change(previous, snapshot).to_bytes()
