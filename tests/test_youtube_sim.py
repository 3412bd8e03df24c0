"""The YouTube simulator over real HTTP: shapes, paging, errors and quota as the real API."""

from __future__ import annotations

import httpx
import pytest
from youtube_sim_fixtures import SimControl, sim_video, start_youtube_sim

from tubewatch.youtube_sim.fields import FieldsError, apply_fields, parse_fields

KEY = "sim-test-key"


@pytest.fixture
def sim():
    with start_youtube_sim() as url:
        control = SimControl(url)
        yield control
        control.close()


def ids(n: int, prefix: str = "v") -> list[str]:
    return [f"{prefix}{i:010d}" for i in range(n)]


def get(sim: SimControl, endpoint: str, **params) -> httpx.Response:
    params.setdefault("key", KEY)
    return httpx.get(f"{sim.api_url}/{endpoint}", params=params, timeout=10)


def reason(response: httpx.Response) -> str:
    return response.json()["error"]["errors"][0]["reason"]


def test_playlist_items_page_with_page_token(sim):
    sim.add_playlist("PLpages", [sim_video(v) for v in ids(120)])
    seen, token, pages = [], None, 0
    while True:
        params = {"part": "contentDetails", "playlistId": "PLpages", "maxResults": 50}
        if token:
            params["pageToken"] = token
        body = get(sim, "playlistItems", **params).json()
        pages += 1
        assert body["kind"] == "youtube#playlistItemListResponse"
        assert body["pageInfo"] == {"totalResults": 120, "resultsPerPage": 50}
        seen += [item["contentDetails"]["videoId"] for item in body["items"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    assert seen == ids(120)
    # the default page size is 5, as on the real API
    assert len(get(sim, "playlistItems", part="id", playlistId="PLpages").json()["items"]) == 5
    assert sim.units() == 4


def test_playlist_items_reject_bad_paging(sim):
    sim.add_playlist("PLx", [sim_video(v) for v in ids(3)])
    too_many = get(sim, "playlistItems", part="id", playlistId="PLx", maxResults=51)
    assert too_many.status_code == 400
    assert too_many.json()["error"]["errors"][0]["location"] == "maxResults"
    bad_token = get(sim, "playlistItems", part="id", playlistId="PLx", pageToken="garbage!")
    assert bad_token.status_code == 400 and reason(bad_token) == "invalidPageToken"
    no_part = get(sim, "playlistItems", playlistId="PLx")
    assert no_part.status_code == 400 and reason(no_part) == "required"


def test_playlist_not_found_has_the_real_error_body(sim):
    response = get(sim, "playlistItems", part="contentDetails", playlistId="PLnope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == 404
    assert error["errors"][0] == {
        "message": error["message"],
        "domain": "youtube.playlistItem",
        "reason": "playlistNotFound",
        "location": "playlistId",
        "locationType": "parameter",
    }


def test_videos_statistics_as_strings_hidden_counts_absent(sim):
    a, b, c = ids(3)
    sim.add_playlist("PLs", [sim_video(a, likes=5, comments=2, views=100), sim_video(b)])
    sim.patch_video(b, likes=None, comments=None)
    body = get(sim, "videos", part="snippet,statistics", id=f"{a},{b},{c}").json()
    assert body["kind"] == "youtube#videoListResponse"
    by_id = {item["id"]: item for item in body["items"]}
    assert set(by_id) == {a, b}  # c does not exist: silently left out
    assert by_id[a]["statistics"] == {
        "viewCount": "100",
        "likeCount": "5",
        "favoriteCount": "0",
        "commentCount": "2",
    }
    assert "likeCount" not in by_id[b]["statistics"]
    assert "commentCount" not in by_id[b]["statistics"]
    assert by_id[a]["snippet"]["title"] == f"Video {a}"


def test_private_and_deleted_videos_left_out_of_videos_but_listed_in_playlists(sim):
    a, b, c = ids(3)
    sim.add_playlist("PLp", [sim_video(v) for v in (a, b, c)])
    sim.patch_video(b, privacy="private")
    sim.patch_video(c, privacy="deleted")
    body = get(sim, "videos", part="statistics", id=f"{a},{b},{c}").json()
    assert [item["id"] for item in body["items"]] == [a]
    items = get(sim, "playlistItems", part="snippet", playlistId="PLp", maxResults=50).json()
    titles = [item["snippet"]["title"] for item in items["items"]]
    assert titles == [f"Video {a}", "Private video", "Deleted video"]


def test_videos_takes_at_most_50_ids(sim):
    response = get(sim, "videos", part="statistics", id=",".join(ids(51)))
    assert response.status_code == 400
    assert get(sim, "videos", part="statistics", id=",".join(ids(50))).status_code == 200


def test_fields_trims_the_answer(sim):
    sim.add_playlist("PLf", [sim_video(v) for v in ids(60)])
    body = get(
        sim,
        "playlistItems",
        part="snippet,contentDetails",
        playlistId="PLf",
        maxResults=50,
        fields="nextPageToken,items(contentDetails/videoId)",
    ).json()
    assert set(body) == {"nextPageToken", "items"}
    assert body["items"][0] == {"contentDetails": {"videoId": ids(1)[0]}}
    bad = get(sim, "videos", part="id", id="x", fields="items(id")
    assert bad.status_code == 400 and reason(bad) == "invalidParameter"


def test_fields_parser():
    tree = parse_fields("a,b(c,d/e),b(f),g/h,g")
    assert tree == {"a": None, "b": {"c": None, "d": {"e": None}, "f": None}, "g": None}
    value = {"a": 1, "b": [{"c": 2, "d": {"e": 3, "x": 4}, "y": 5}], "z": 6}
    assert apply_fields(value, tree) == {"a": 1, "b": [{"c": 2, "d": {"e": 3}}]}
    with pytest.raises(FieldsError):
        parse_fields("a(b")
    with pytest.raises(FieldsError):
        parse_fields("a,,b")


def test_keys_missing_and_invalid(sim):
    missing = httpx.get(f"{sim.api_url}/videos", params={"part": "id", "id": "x"})
    assert missing.status_code == 403 and reason(missing) == "forbidden"
    sim.set_keys(["the-good-key"])
    invalid = get(sim, "videos", part="id", id="x", key="a-bad-key")
    assert invalid.status_code == 400 and reason(invalid) == "badRequest"
    assert invalid.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert get(sim, "videos", part="id", id="x", key="the-good-key").status_code == 200
    assert sim.units() == 3  # failed calls cost a unit too


def test_daily_limit_gives_quota_exceeded(sim):
    sim.set_quota(daily_limit=2)
    codes = [get(sim, "videos", part="id", id="x").status_code for _ in range(3)]
    assert codes == [200, 200, 403]
    over = get(sim, "videos", part="id", id="x")
    assert reason(over) == "quotaExceeded"
    assert over.json()["error"]["errors"][0]["domain"] == "youtube.quota"
    assert sim.quota()["units_used"] == 4
    sim.set_quota(units_used=0)
    assert get(sim, "videos", part="id", id="x").status_code == 200


def test_injected_faults_hit_the_next_calls_only(sim):
    sim.fault("backendError", endpoint="videos", count=2)
    sim.fault("accessNotConfigured", endpoint="playlistItems")
    assert [get(sim, "videos", part="id", id="x").status_code for _ in range(3)] == [500, 500, 200]
    denied = get(sim, "playlistItems", part="id", playlistId="PLnone")
    assert denied.status_code == 403 and reason(denied) == "accessNotConfigured"
    unknown = sim.http.post("/_sim/faults", json={"reason": "noSuchReason"})
    assert unknown.status_code == 422


def test_cli_serves_the_simulator(tmp_path):
    """`tubewatch youtube-sim --port P` as a real process."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tubewatch.cli", "youtube-sim", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_sim/quota", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "did not start"
                time.sleep(0.1)
        assert answer.json()["units_used"] == 0
        sim = SimControl(f"http://127.0.0.1:{port}")
        sim.add_playlist("PLcli", [sim_video("Tk23kQRFWcw")])
        body = get(sim, "playlistItems", part="contentDetails", playlistId="PLcli").json()
        assert body["items"][0]["contentDetails"]["videoId"] == "Tk23kQRFWcw"
        sim.close()
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert KEY not in output  # no access log with the key in it
    assert process.returncode == 0, f"SIGTERM is a clean stop, not death by signal: {output}"
    assert "Traceback" not in output


def test_cli_on_a_busy_port_says_so(tmp_path):
    """The port taken: one clear line and exit 2, not a "running on" line then uvicorn's
    error."""
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tubewatch.cli", "youtube-sim", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "youtube/v3" not in result.stdout, "it must not claim to be running"
    assert "Traceback" not in result.stderr


def test_drift_moves_counts_but_keeps_nulls(sim):
    a, b = ids(2)
    sim.add_playlist("PLd", [sim_video(a, likes=10, comments=5, views=100), sim_video(b)])
    sim.patch_video(b, likes=None, comments=None)
    assert sim.drift(views=50, likes=5, comments=5, seed=1) == 2
    body = get(sim, "videos", part="statistics", id=f"{a},{b}").json()
    stats = {item["id"]: item["statistics"] for item in body["items"]}
    assert 100 <= int(stats[a]["viewCount"]) <= 150 and 10 <= int(stats[a]["likeCount"]) <= 15
    assert "likeCount" not in stats[b] and "commentCount" not in stats[b]
    sim.reset()
    assert sim.units() == 0


def test_patch_null_hides_likes_turns_comments_off_and_nothing_else(sim):
    """CONTRACT.md: ``null`` hides likes or turns comments off; a null anywhere else is a 422
    (it was silently ignored, so a test thinking it froze views went on with the old ones)."""
    (vid,) = ids(1)
    sim.add_playlist("PLn", [sim_video(vid, likes=10, comments=5, views=100)])
    refused = sim.http.patch(f"/_sim/videos/{vid}", json={"views": None, "likes": 3})
    assert refused.status_code == 422 and "views" in refused.json()["detail"]
    stats = get(sim, "videos", part="statistics", id=vid).json()["items"][0]["statistics"]
    assert stats == {
        "viewCount": "100",
        "likeCount": "10",
        "favoriteCount": "0",
        "commentCount": "5",
    }
    sim.patch_video(vid, likes=None, comments=None, views=150)
    stats = get(sim, "videos", part="statistics", id=vid).json()["items"][0]["statistics"]
    assert stats == {"viewCount": "150", "favoriteCount": "0"}
