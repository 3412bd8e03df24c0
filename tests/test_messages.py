import json

import pytest

from tubewatch.messages import MessageError, VideoChange, VideoSnapshot
from tubewatch.schemas import render_schemas

SNAPSHOT = (
    b'{"video_id":"Tk23kQRFWcw","title":"A","channel_title":"C","thumbnail":"https://i/t.jpg",'
    b'"likes":3020,"comments":41,"views":120345,"favorites":0,"polled_at":"2026-11-28T12:00:00Z"}'
)


def test_snapshot_round_trips_byte_for_byte():
    snapshot = VideoSnapshot.from_bytes(SNAPSHOT)
    assert snapshot.likes == 3020
    assert snapshot.key == b"Tk23kQRFWcw"
    assert snapshot.to_bytes() == SNAPSHOT


def test_hidden_likes_stay_null_not_zero():
    raw = json.loads(SNAPSHOT)
    raw["likes"] = None
    snapshot = VideoSnapshot.model_validate(raw)
    assert snapshot.likes is None
    assert json.loads(snapshot.to_bytes())["likes"] is None


def test_change_field_order_is_the_contracts():
    change = VideoChange(
        video_id="Tk23kQRFWcw",
        title="A",
        thumbnail=None,
        likes_previous=1,
        likes_current=2,
        comments_previous=None,
        comments_current=5,
        views_previous=7,
        views_current=7,
        polled_at="2026-11-28T12:01:00+00:00",
    )
    assert list(json.loads(change.to_bytes())) == [
        "video_id",
        "title",
        "thumbnail",
        "likes_previous",
        "likes_current",
        "comments_previous",
        "comments_current",
        "views_previous",
        "views_current",
        "polled_at",
    ]
    assert json.loads(change.to_bytes())["polled_at"] == "2026-11-28T12:01:00Z"
    assert change.changed_metrics() == ["likes"]
    assert change.delta("comments") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"video_id":"short","title":"x","likes":1,"comments":1,'
        b'"polled_at":"2026-11-28T12:00:00Z"}',
        None,
        SNAPSHOT.replace(b"3020", b"-1"),
        SNAPSHOT.replace(b"Z", b""),
    ],
)
def test_malformed_values_raise_message_error(raw):
    with pytest.raises(MessageError):
        VideoSnapshot.from_bytes(raw)


def test_checked_in_json_schemas_are_current():
    for path, text in render_schemas().items():
        assert path.exists(), f"{path} missing: run python -m tubewatch.schemas"
        assert path.read_text() == text, f"{path} is stale: run python -m tubewatch.schemas"
