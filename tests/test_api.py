"""The REST API through FastAPI's test client on a real SQLite file (and uvicorn over HTTP).

Owner isolation is checked for every route with an id, and the route table is checked
against that list so a new route cannot be added without its isolation test.
"""

from __future__ import annotations

import argparse
import logging

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from tests.api_fixtures import LiveServer, auth, make_settings, mint
from tests.receivers import HttpReceiver
from tubewatch.api import keys_cli
from tubewatch.api.keys import hash_key
from tubewatch.api.main import create_app
from tubewatch.db import get_engine
from tubewatch.messages import utc_now
from tubewatch.models import ApiKey, Delivery, QuotaDay, Subscription, Video, Watch, WatchVideo

pytest_plugins = ["tests.api_fixtures"]

TOKEN = "SuperSecretToken123"
SECRET_TARGET = f"json://user:{TOKEN}@example.org/hook/{TOKEN}"


def make_watch(api, headers=None, **body):
    body = body or {"playlist_id": "PLabcdefghijklmnop"}
    response = api.client.post("/watches", json=body, headers=headers or api.alice)
    assert response.status_code == 201, response.text
    return response.json()


# --- keys and auth --------------------------------------------------------------------------


def test_keys_create_prints_key_last_and_stores_only_its_hash(api_settings, monkeypatch, capsys):
    monkeypatch.setenv("TUBEWATCH_DATABASE_URL", api_settings.database_url)
    from tubewatch.settings import get_settings

    get_settings.cache_clear()
    try:
        assert keys_cli.main(argparse.Namespace(keys_command="create", name="carol")) == 0
    finally:
        get_settings.cache_clear()
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("tw_") and " " not in key
    engine = get_engine(api_settings.database_url)
    with Session(engine) as session:
        rows = session.exec(select(ApiKey)).all()
    assert [(r.owner, r.key_hash) for r in rows] == [("carol", hash_key(key))]
    with engine.connect() as connection:
        dump = "\n".join(str(r) for r in connection.execute(text("SELECT * FROM apikey")))
    assert key not in dump


def test_keys_create_refuses_an_empty_name(api_settings, monkeypatch, capsys):
    monkeypatch.setenv("TUBEWATCH_DATABASE_URL", api_settings.database_url)
    from tubewatch.settings import get_settings

    get_settings.cache_clear()
    try:
        assert keys_cli.main(argparse.Namespace(keys_command="create", name="  ")) == 2
    finally:
        get_settings.cache_clear()
    assert "name" in capsys.readouterr().err


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer tw_wrong"}, {"Authorization": "Basic abc"}],
    ids=["none", "unknown-key", "not-bearer"],
)
def test_no_valid_key_is_401(api, headers):
    response = api.client.get("/watches", headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]


def test_revoked_key_is_401(api):
    with Session(api.engine) as session:
        for row in session.exec(select(ApiKey).where(ApiKey.owner == "alice")):
            row.revoked = True
            session.add(row)
        session.commit()
    assert api.client.get("/watches", headers=api.alice).status_code == 401


def test_keys_with_one_name_share_an_owner(api):
    watch = make_watch(api)
    second = auth(mint(api.engine, "alice"))
    assert api.client.get(f"/watches/{watch['id']}", headers=second).status_code == 200


def test_key_use_is_recorded(api):
    api.client.get("/watches", headers=api.alice)
    with Session(api.engine) as session:
        used = session.exec(select(ApiKey.last_used_at).where(ApiKey.owner == "alice")).one()
    assert used is not None


# --- watches --------------------------------------------------------------------------------


def test_playlist_watch_with_inline_subscription(api):
    watch = make_watch(
        api,
        playlist_id="PLabcdefghijklmnop",
        label="mine",
        notify=[SECRET_TARGET],
        metrics=["views"],
        min_delta={"views": 1000},
    )
    assert watch["kind"] == "playlist" and watch["playlist_id"] == "PLabcdefghijklmnop"
    assert watch["video_id"] is None and watch["label"] == "mine"
    assert watch["paused"] is False and watch["status"] == "active" and watch["error"] is None
    assert watch["created_at"].endswith("Z")
    [sub] = watch["subscriptions"]
    assert sub["targets"] == ["json://example.org/…"]
    assert sub["metrics"] == ["views"] and sub["min_delta"] == {"views": 1000}
    assert TOKEN not in api.client.get("/watches", headers=api.alice).text
    # At rest the target is encrypted: the raw row does not contain the token.
    with api.engine.connect() as connection:
        raw = connection.execute(text("SELECT targets FROM subscription")).scalar_one()
    assert TOKEN not in raw and "example.org" not in raw


def test_video_watch_covers_its_video_and_is_what_the_poller_reads(api):
    watch = make_watch(api, video_id="Tk23kQRFWcw")
    assert watch["kind"] == "video" and watch["subscriptions"] == []
    # The poller reads active, unpaused watches and their WatchVideo rows every cycle.
    with Session(api.engine) as session:
        row = session.get(Watch, watch["id"])
        members = session.exec(select(WatchVideo).where(WatchVideo.watch_id == row.id)).all()
    assert (row.owner, row.status, row.paused) == ("alice", "active", False)
    assert [m.video_id for m in members] == ["Tk23kQRFWcw"]


def test_default_metrics(api):
    watch = make_watch(api, video_id="Tk23kQRFWcw", notify=["json://example.org/x"])
    assert watch["subscriptions"][0]["metrics"] == ["likes", "comments"]


def test_min_delta_alone_follows_its_metric_too(api):
    """CONTRACT.md's (and the README's) example: min_delta views 1000, default metrics."""
    watch = make_watch(
        api,
        playlist_id="PLabcdefghijklmnop",
        notify=["json://example.org/x"],
        min_delta={"views": 1000},
    )
    [sub] = watch["subscriptions"]
    assert sub["metrics"] == ["likes", "comments", "views"]
    assert sub["min_delta"] == {"views": 1000}
    response = api.client.post(
        "/subscriptions",
        json={
            "watch_id": watch["id"],
            "notify": ["json://example.org/y"],
            "min_delta": {"views": 5},
        },
        headers=api.alice,
    )
    assert response.status_code == 201, response.text
    assert response.json()["metrics"] == ["likes", "comments", "views"]
    # PATCH: a threshold on a metric not followed yet starts following it.
    path = f"/subscriptions/{sub['id']}"
    only_likes = api.client.patch(
        path, json={"metrics": ["likes"], "min_delta": {}}, headers=api.alice
    )
    assert only_likes.json()["metrics"] == ["likes"], only_likes.text
    patched = api.client.patch(path, json={"min_delta": {"comments": 3}}, headers=api.alice)
    assert patched.status_code == 200, patched.text
    assert patched.json()["metrics"] == ["likes", "comments"]
    assert patched.json()["min_delta"] == {"comments": 3}


def test_pause_label_and_delete_reach_the_database(api):
    watch = make_watch(api, video_id="Tk23kQRFWcw", notify=["json://example.org/x"])
    response = api.client.patch(
        f"/watches/{watch['id']}", json={"paused": True, "label": "x"}, headers=api.alice
    )
    assert response.status_code == 200 and response.json()["paused"] is True
    with Session(api.engine) as session:
        assert session.get(Watch, watch["id"]).paused is True
    assert api.client.delete(f"/watches/{watch['id']}", headers=api.alice).status_code == 204
    with Session(api.engine) as session:
        assert session.get(Watch, watch["id"]) is None
        assert session.exec(select(Subscription)).all() == []
        assert session.exec(select(WatchVideo)).all() == []
    assert api.client.get(f"/watches/{watch['id']}", headers=api.alice).status_code == 404


def test_watch_videos_show_the_latest_counts(api):
    watch = make_watch(api, playlist_id="PLabcdefghijklmnop")
    with Session(api.engine) as session:
        session.add(WatchVideo(watch_id=watch["id"], video_id="bbbbbbbbbbb", position=1))
        session.add(WatchVideo(watch_id=watch["id"], video_id="aaaaaaaaaaa", position=0))
        session.add(
            Video(
                video_id="aaaaaaaaaaa",
                title="A",
                likes=3,
                comments=None,
                views=10,
                polled_at=utc_now(),
            )
        )
        session.commit()
    response = api.client.get(f"/watches/{watch['id']}/videos", headers=api.alice)
    assert response.status_code == 200
    first, second = response.json()
    assert (first["video_id"], first["title"], first["likes"], first["comments"]) == (
        "aaaaaaaaaaa",
        "A",
        3,
        None,
    )
    assert first["polled_at"].endswith("Z")
    assert (second["video_id"], second["likes"], second["polled_at"]) == ("bbbbbbbbbbb", None, None)


# --- validation ------------------------------------------------------------------------------

BAD_WATCHES = {
    "neither-id": {"label": "x"},
    "both-ids": {"playlist_id": "PLabcdefghijk", "video_id": "Tk23kQRFWcw"},
    "bad-playlist-id": {"playlist_id": "not a playlist"},
    "playlist-wrong-prefix": {"playlist_id": "XXabcdefghijk"},
    "bad-video-id-length": {"video_id": "short"},
    "bad-video-id-chars": {"video_id": "Tk23kQRFW!w"},
    "unknown-metric": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "metrics": ["dislikes"],
    },
    "min-delta-not-in-explicit-metrics": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "metrics": ["likes"],
        "min_delta": {"views": 5},
    },
    "min-delta-as-string": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "min_delta": {"likes": "10"},
    },
    "min-delta-as-bool": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "min_delta": {"likes": True},
    },
    "min-delta-huge": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "min_delta": {"views": 10**30},
    },
    "min-delta-unknown-metric": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "min_delta": {"dislikes": 1},
    },
    "playlist-id-not-a-string": {"playlist_id": 123},
    "label-not-a-string": {"video_id": "Tk23kQRFWcw", "label": 5},
    "body-is-a-list": [{"video_id": "Tk23kQRFWcw"}],
    "negative-min-delta": {
        "video_id": "Tk23kQRFWcw",
        "notify": ["json://example.org/x"],
        "metrics": ["views"],
        "min_delta": {"views": -1},
    },
    "metrics-without-notify": {"video_id": "Tk23kQRFWcw", "metrics": ["views"]},
    "too-many-targets": {"video_id": "Tk23kQRFWcw", "notify": ["json://example.org/x"] * 21},
    "empty-notify": {"video_id": "Tk23kQRFWcw", "notify": []},
    "long-label": {"video_id": "Tk23kQRFWcw", "label": "x" * 201},
    "control-chars-in-label": {"video_id": "Tk23kQRFWcw", "label": "a\x00b"},
    "unknown-field": {"video_id": "Tk23kQRFWcw", "notfiy": ["json://example.org/x"]},
    "unparseable-target": {"video_id": "Tk23kQRFWcw", "notify": [f"nope://{TOKEN}"]},
    "not-a-list": {"video_id": "Tk23kQRFWcw", "notify": "json://example.org/x"},
}


@pytest.mark.parametrize("body", BAD_WATCHES.values(), ids=BAD_WATCHES.keys())
def test_bad_watch_bodies_are_422_and_create_nothing(api, body):
    response = api.client.post("/watches", json=body, headers=api.alice)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all(item["msg"] and item["loc"] for item in detail)
    assert TOKEN not in response.text  # the rejected input is not echoed
    with Session(api.engine) as session:
        assert session.exec(select(Watch)).all() == []


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"video_id": "Tk23kQRFWcw", "label": "\xff"}',  # not UTF-8 (was a bare 400)
        b"[" * 30_000,  # deeper than the JSON parser goes (was a bare 400)
        b'{"video_id": "Tk23kQRFWcw", "label": ' + b'{"a":' * 6000 + b"1" + b"}" * 6001,
    ],
    ids=["not-json", "not-utf8", "deep-list", "deep-object"],
)
def test_invalid_json_is_422(api, raw):
    response = api.client.post(
        "/watches", content=raw, headers={**api.alice, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    [item] = response.json()["detail"]
    assert item["loc"][0] == "body" and item["type"] == "json_invalid"
    with Session(api.engine) as session:
        assert session.exec(select(Watch)).all() == []


@pytest.mark.parametrize(
    "target",
    [
        "json://127.0.0.1:9/x",
        "json://localhost/x",
        "json://169.254.169.254/latest",
        "json://10.1.2.3/x",
        "json://[::1]:8080/x",
    ],
)
def test_private_targets_are_refused_unless_allowed(database_url, tmp_path, target):
    from fastapi.testclient import TestClient

    settings = make_settings(database_url, tmp_path, allow_private_targets=False)
    with TestClient(create_app(settings)) as client:
        headers = auth(mint(get_engine(database_url), "alice"))
        response = client.post(
            "/watches", json={"video_id": "Tk23kQRFWcw", "notify": [target]}, headers=headers
        )
    assert response.status_code == 422
    assert "private" in response.json()["detail"][0]["msg"]
    assert response.json()["detail"][0]["loc"] == ["body", "notify", 0]


def test_oversized_body_is_413(api):
    body = {"video_id": "Tk23kQRFWcw", "label": "x" * 70_000}
    response = api.client.post("/watches", json=body, headers=api.alice)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_oversized_chunked_body_is_413(api):
    def chunks():
        yield b'{"video_id": "Tk23kQRFWcw", "label": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post(
        "/watches", content=chunks(), headers={**api.alice, "content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("watch_id", ["0", "-1", "abc", str(2**31), str(10**30)])
def test_out_of_range_ids_are_422(api, watch_id):
    assert api.client.get(f"/watches/{watch_id}", headers=api.alice).status_code == 422


# --- subscriptions ---------------------------------------------------------------------------


def test_subscription_crud(api):
    watch = make_watch(api)
    response = api.client.post(
        "/subscriptions",
        json={
            "watch_id": watch["id"],
            "notify": [SECRET_TARGET],
            "metrics": ["likes", "views"],
            "min_delta": {"views": 10},
        },
        headers=api.alice,
    )
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["targets"] == ["json://example.org/…"] and sub["watch_id"] == watch["id"]
    path = f"/subscriptions/{sub['id']}"
    patched = api.client.patch(
        path, json={"paused": True, "metrics": ["views"]}, headers=api.alice
    ).json()
    assert patched["paused"] is True and patched["metrics"] == ["views"]
    assert patched["min_delta"] == {"views": 10}
    # Dropping a metric that min_delta still names is refused.
    bad = api.client.patch(path, json={"metrics": ["likes"]}, headers=api.alice)
    assert bad.status_code == 422 and "min_delta" in bad.text
    assert api.client.get(path, headers=api.alice).json()["metrics"] == ["views"]
    listed = api.client.get("/subscriptions", headers=api.alice).json()
    assert [s["id"] for s in listed] == [sub["id"]]
    assert (
        api.client.get(f"/watches/{watch['id']}", headers=api.alice).json()["subscriptions"][0][
            "id"
        ]
        == sub["id"]
    )
    assert api.client.delete(path, headers=api.alice).status_code == 204
    assert api.client.get(path, headers=api.alice).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"watch_id": "WATCH_AS_TEXT", "notify": ["json://example.org/x"]},
        {"watch_id": True, "notify": ["json://example.org/x"]},
        {"watch_id": 10**30, "notify": ["json://example.org/x"]},
        {"watch_id": "WATCH"},
        {"watch_id": "WATCH", "notify": []},
        {"watch_id": "WATCH", "notify": ["json://example.org/x"], "min_delta": {"likes": "2"}},
        {"watch_id": "WATCH", "notify": ["json://example.org/x"], "metrics": ["likes", "likes"]},
    ],
)
def test_bad_subscription_bodies_are_422(api, body):
    watch = make_watch(api)
    real_id = {"WATCH": watch["id"], "WATCH_AS_TEXT": str(watch["id"])}
    body = {**body, "watch_id": real_id.get(body["watch_id"], body["watch_id"])}
    response = api.client.post("/subscriptions", json=body, headers=api.alice)
    assert response.status_code == 422, response.text
    assert all(item["msg"] and item["loc"] for item in response.json()["detail"])
    assert api.client.get("/subscriptions", headers=api.alice).json() == []


def test_subscription_on_a_missing_watch_is_404(api):
    response = api.client.post(
        "/subscriptions",
        json={"watch_id": 999, "notify": ["json://example.org/x"]},
        headers=api.alice,
    )
    assert response.status_code == 404


def test_test_send_reports_per_target(api):
    with HttpReceiver() as good, HttpReceiver() as bad:
        bad.fail_always(status=500)
        watch = make_watch(
            api,
            video_id="Tk23kQRFWcw",
            notify=[good.url("json", f"/ok/{TOKEN}"), bad.url("json", f"/bad/{TOKEN}")],
        )
        sub_id = watch["subscriptions"][0]["id"]
        response = api.client.post(f"/subscriptions/{sub_id}/test", headers=api.alice)
        assert response.status_code == 200, response.text
        report = response.json()
        [received] = good.wait_for(1)
    assert report["delivered"] is False
    ok, failed = report["results"]
    assert ok == {"target": "json://127.0.0.1/…", "ok": True, "error": None}
    assert failed["ok"] is False and failed["error"]
    assert TOKEN not in response.text
    assert "test alert" in received.message


def test_test_send_all_ok_is_delivered(api):
    with HttpReceiver() as good:
        watch = make_watch(api, video_id="Tk23kQRFWcw", notify=[good.url()])
        sub_id = watch["subscriptions"][0]["id"]
        report = api.client.post(f"/subscriptions/{sub_id}/test", headers=api.alice).json()
        good.wait_for(1)
    assert report["delivered"] is True


def test_targets_never_reach_the_logs(api, caplog):
    # INFO, the level `tubewatch` runs at: apprise itself logs whole URLs at DEBUG.
    caplog.set_level(logging.INFO)
    with HttpReceiver() as bad:
        bad.fail_always(status=500)
        watch = make_watch(api, video_id="Tk23kQRFWcw", notify=[bad.url("json", f"/{TOKEN}")])
        api.client.post(f"/subscriptions/{watch['subscriptions'][0]['id']}/test", headers=api.alice)
        api.client.post(
            "/watches",
            json={"video_id": "Tk23kQRFWcw", "notify": [f"nope://{TOKEN}"]},
            headers=api.alice,
        )
    assert caplog.records  # something was logged (apprise, httpx...)
    assert TOKEN not in caplog.text


# --- deliveries and quota --------------------------------------------------------------------


def test_deliveries_filtered_by_owner_and_subscription(api):
    with Session(api.engine) as session:
        for owner, sub_id, n in (("alice", 1, 3), ("alice", 2, 1), ("bob", 1, 2)):
            for i in range(n):
                session.add(
                    Delivery(
                        owner=owner,
                        subscription_id=sub_id,
                        event_id=f"{owner}@{i}",
                        video_id="Tk23kQRFWcw",
                        status="delivered",
                        attempts=1,
                    )
                )
        session.commit()
    rows = api.client.get("/deliveries", headers=api.alice).json()
    assert len(rows) == 4 and rows[0]["id"] > rows[-1]["id"]
    assert rows[0]["created_at"].endswith("Z") and rows[0]["status"] == "delivered"
    only = api.client.get("/deliveries?subscription_id=1&limit=2", headers=api.alice).json()
    assert [r["subscription_id"] for r in only] == [1, 1]
    assert len(api.client.get("/deliveries", headers=api.bob).json()) == 2
    assert api.client.get("/deliveries?limit=0", headers=api.alice).status_code == 422


def test_quota_report(api):
    from tubewatch.quota import add_units

    with Session(api.engine) as session:
        add_units(session, 42)
        session.commit()
    report = api.client.get("/quota", headers=api.alice).json()
    assert report["units_used_today"] == 42
    assert report["units_per_day"] == api.settings.quota_units_per_day
    assert report["projected_units_today"] >= 42
    assert report["resets_at"].endswith("Z") and report["exhausted_until"] is None
    with Session(api.engine) as session:
        assert len(session.exec(select(QuotaDay)).all()) == 1


# --- owner isolation: every route ------------------------------------------------------------

# (method, path template, body) for each route that names an object; {watch}/{sub} are
# alice's objects, requested with bob's key.
OWNED_ROUTES = [
    ("GET", "/watches/{watch}", None),
    ("PATCH", "/watches/{watch}", {"paused": True}),
    ("DELETE", "/watches/{watch}", None),
    ("GET", "/watches/{watch}/videos", None),
    ("GET", "/subscriptions/{sub}", None),
    ("PATCH", "/subscriptions/{sub}", {"paused": True}),
    ("DELETE", "/subscriptions/{sub}", None),
    ("POST", "/subscriptions/{sub}/test", None),
    ("POST", "/subscriptions", "subscribe"),
]
# Collections answer with the caller's own objects only.
LIST_ROUTES = ["/watches", "/subscriptions", "/deliveries", "/deliveries?subscription_id={sub}"]
PUBLIC_ROUTES = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/docs/oauth2-redirect",
    "/static-offline-docs",
}
SHARED_ROUTES = {("GET", "/quota"), ("POST", "/watches")}  # nothing owned to leak


def test_every_route_is_covered_by_the_isolation_tests(api):
    covered = {
        (m, p.replace("{watch}", "{watch_id}").replace("{sub}", "{subscription_id}"))
        for m, p, _ in OWNED_ROUTES
    }
    covered |= {("GET", p.split("?")[0]) for p in LIST_ROUTES} | SHARED_ROUTES
    for route in api.client.app.routes:
        path = getattr(route, "path", "")
        if path in PUBLIC_ROUTES or path.startswith("/static-offline-docs"):
            continue
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}:
            assert (method, path) in covered, f"{method} {path} has no owner-isolation test"


def test_the_spec_documents_401_everywhere_a_key_is_needed_and_404_where_ids_are(api):
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            if path in PUBLIC_ROUTES:
                assert "401" not in answers, f"{method} {path} needs no key"
                continue
            assert answers["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorPublic"
            }, f"{method} {path}"
            if "{" in path:
                assert "404" in answers, f"{method} {path} reaches an object by id"


@pytest.fixture
def alices_objects(api):
    with HttpReceiver() as receiver:
        watch = make_watch(api, video_id="Tk23kQRFWcw", notify=[receiver.url()])
        sub = watch["subscriptions"][0]
        with Session(api.engine) as session:
            session.add(
                Delivery(
                    owner="alice", subscription_id=sub["id"], event_id="v@1", video_id="Tk23kQRFWcw"
                )
            )
            session.commit()
        yield {"watch": watch["id"], "sub": sub["id"], "receiver": receiver}


@pytest.mark.parametrize(
    "method,template,body", OWNED_ROUTES, ids=[f"{m} {p}" for m, p, _ in OWNED_ROUTES]
)
def test_another_owner_gets_404(api, alices_objects, method, template, body):
    path = template.format(**alices_objects)
    if body == "subscribe":
        body = {"watch_id": alices_objects["watch"], "notify": ["json://example.org/x"]}
    response = api.client.request(method, path, json=body, headers=api.bob)
    assert response.status_code == 404, response.text
    assert set(response.json()) == {"detail"}
    # Nothing changed, nothing sent; alice still sees her objects as they were.
    watch = api.client.get(f"/watches/{alices_objects['watch']}", headers=api.alice).json()
    assert watch["paused"] is False and len(watch["subscriptions"]) == 1
    assert watch["subscriptions"][0]["paused"] is False
    assert alices_objects["receiver"].ok == []
    with Session(api.engine) as session:
        assert session.exec(select(Subscription)).one().owner == "alice"


@pytest.mark.parametrize("template", LIST_ROUTES)
def test_another_owner_lists_nothing(api, alices_objects, template):
    path = template.format(**alices_objects)
    assert api.client.get(path, headers=api.alice).json() != []
    assert api.client.get(path, headers=api.bob).json() == []


# --- health, metrics, real HTTP --------------------------------------------------------------


def test_health_and_metrics_need_no_key(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    api.client.get("/watches/12345", headers=api.alice)
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200 and "python_info" in metrics.text
    assert 'route="/watches/{watch_id}",status="404"' in metrics.text


def test_readyz_checks_the_broker(database_url, tmp_path, kafka_bootstrap):
    from fastapi.testclient import TestClient

    for bootstrap, code in ((kafka_bootstrap, 200), ("127.0.0.1:1", 503)):
        settings = make_settings(database_url, tmp_path, kafka_bootstrap=bootstrap)
        with TestClient(create_app(settings)) as client:
            response = client.get("/readyz")
        assert response.status_code == code, response.text
        assert response.json()["checks"]["broker"] == (
            "ok" if code == 200 else response.json()["checks"]["broker"]
        )
        assert response.json()["checks"]["database"] == "ok"


def test_readyz_on_a_dead_broker_does_not_flood_stderr(database_url, tmp_path, capfd):
    from fastapi.testclient import TestClient

    settings = make_settings(database_url, tmp_path, kafka_bootstrap="127.0.0.1:1")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
    assert "rdkafka" not in capfd.readouterr().err


def test_readyz_reports_a_dead_database(tmp_path):
    from fastapi.testclient import TestClient

    folder = tmp_path / "gone"
    folder.mkdir()
    settings = make_settings(f"sqlite:///{folder}/x.db", tmp_path)
    folder.rmdir()  # the database's folder disappears under the running service
    client = TestClient(create_app(settings, migrate=False))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("database unavailable")


def test_over_real_http(api_settings):
    with LiveServer(api_settings) as server:
        headers = auth(mint(get_engine(api_settings.database_url), "dave"))
        created = httpx.post(
            f"{server.url}/watches", json={"video_id": "Tk23kQRFWcw"}, headers=headers
        )
        assert created.status_code == 201
        listed = httpx.get(f"{server.url}/watches", headers=headers).json()
        assert [w["id"] for w in listed] == [created.json()["id"]]
        assert httpx.get(f"{server.url}/watches").status_code == 401


def test_api_command_on_a_busy_port_says_so_and_exits_2(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWATCH_")}
    env.update(
        TUBEWATCH_DATABASE_URL=f"sqlite:///{tmp_path / 'busy.db'}", TUBEWATCH_DATA_DIR=str(tmp_path)
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tubewatch.cli", "api", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"tubewatch api: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr and "Started server" not in result.stderr


def test_keys_create_command_line(api, tmp_path):
    """The real command: the key alone on the last line of stdout, and it works."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "TUBEWATCH_DATABASE_URL": api.settings.database_url,
        "TUBEWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tubewatch.cli", "keys", "create", "--name", "erin"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    key = result.stdout.splitlines()[-1]
    assert key.startswith("tw_") and key.strip() == key
    assert key not in result.stderr
    assert api.client.get("/watches", headers=auth(key)).json() == []
