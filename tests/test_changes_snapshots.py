"""`Snapshot.from_bytes` (the engine's fast parse) gives `VideoSnapshot.from_bytes`'s verdict."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tubewatch.changes import snapshots
from tubewatch.changes.snapshots import Snapshot
from tubewatch.messages import MessageError, VideoSnapshot

GOOD = {
    "video_id": "dQw4w9WgXcQ",
    "title": "Never gonna — give you up",
    "channel_title": "Rick",
    "thumbnail": "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg",
    "likes": 18,
    "comments": None,
    "views": 1000,
    "favorites": 0,
    "polled_at": "2026-11-28T12:00:00Z",
}


def model_verdict(raw: bytes | None) -> Snapshot | str:
    """What the pydantic model makes of ``raw``: the same snapshot, or its error text."""
    try:
        return Snapshot.from_model(VideoSnapshot.from_bytes(raw))
    except MessageError as exc:
        return str(exc)


def fast_verdict(raw: bytes | None) -> Snapshot | str:
    try:
        return Snapshot.from_bytes(raw)
    except MessageError as exc:
        return str(exc)


def with_(**changes) -> bytes:
    value = {**GOOD, **changes}
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


EDGE_CASES = [
    with_(),
    with_(likes=None, views=None, channel_title=None, thumbnail=None),
    with_(views=..., favorites=..., channel_title=..., thumbnail=...),  # optional fields absent
    with_(extra_field={"nested": [1, 2]}),  # ignored, as by the model
    with_(likes=...),  # required
    with_(title=None),
    with_(likes=-1),
    with_(likes=True),
    with_(likes=5.0),  # pydantic's lax mode takes it as 5; the fast path leaves it to pydantic
    with_(likes="5"),
    with_(views=2**70),
    with_(video_id="dQw4w9WgXc"),
    with_(video_id="dQw4w9WgXcQ\n"),  # Python's `$` would accept this; the contract does not
    with_(video_id="dQw4w9WgXc!"),
    with_(polled_at="2026-11-28T12:00:00+01:00"),  # valid, not canonical: normalised to UTC
    with_(polled_at="2026-11-28T12:00:00.250Z"),
    with_(polled_at="2026-11-28T12:00:00"),  # naive: refused
    with_(polled_at="2026-02-30T12:00:00Z"),
    with_(polled_at="2026-11-28T24:00:00Z"),
    with_(polled_at=1764331200),
    with_(title='emoji 😀 and \u2028 and \x00 and "quotes"'),
    b'{"video_id":"dQw4w9WgXcQ","title":"\\ud800","likes":1,"comments":1,'
    b'"polled_at":"2026-11-28T12:00:00Z"}',  # a lone surrogate
    b'{"video_id":"aaaaaaaaaaa","video_id":"dQw4w9WgXcQ","title":"t","likes":1,"comments":1,'
    b'"polled_at":"2026-11-28T12:00:00Z"}',  # duplicate key: the last wins in both
    b'{"video_id":"dQw4w9WgXcQ","title":"\xff","likes":1,"comments":1,'
    b'"polled_at":"2026-11-28T12:00:00Z"}',  # not UTF-8
    b"{not json",
    b"[]",
    b"null",
    b"",
    None,  # a tombstone
]


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_edge_cases_get_the_models_verdict(raw):
    assert fast_verdict(raw) == model_verdict(raw)


def test_refusals_carry_the_models_reason():
    verdict = fast_verdict(with_(likes=-1))
    assert isinstance(verdict, str) and "likes" in verdict


def test_canonical_snapshots_take_the_fast_path(monkeypatch):
    """The point of the module: a well-formed snapshot never builds a pydantic model."""

    def refuse(raw):
        raise AssertionError("fell back to pydantic")

    monkeypatch.setattr(snapshots.VideoSnapshot, "from_bytes", refuse)
    snapshot = Snapshot.from_bytes(with_())
    assert (snapshot.video_id, snapshot.likes, snapshot.comments) == ("dQw4w9WgXcQ", 18, None)
    assert snapshot.polled_at == "2026-11-28T12:00:00Z"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**65) | st.floats() | st.text(max_size=14),
    lambda children: st.lists(children, max_size=3),
    max_leaves=4,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        ["dQw4w9WgXcQ", "2026-11-28T12:00:00Z", "2026-11-28T12:00:00+05:30", "1999-01-01"]
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    replaced=st.dictionaries(st.sampled_from(sorted(GOOD)), field_values, max_size=3),
    dropped=st.sets(st.sampled_from(sorted(GOOD)), max_size=2),
)
def test_arbitrary_values_get_the_models_verdict(replaced, dropped):
    value = {k: v for k, v in {**GOOD, **replaced}.items() if k not in dropped}
    raw = json.dumps(value).encode()
    assert fast_verdict(raw) == model_verdict(raw)
