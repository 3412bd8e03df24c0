"""Schema-driven fuzzing (schemathesis): no input the OpenAPI spec allows, or breaks, is a 5xx.

Every operation gets generated requests (valid and invalid bodies, path ids, query values)
with a valid key, against the app on a real SQLite file that already holds a watch, a
subscription and a delivery for that key, so the generated ids reach real rows too.
Private targets stay refused, so the test-send route never reaches outside the machine.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlmodel import Session

from tests.api_fixtures import auth, make_settings, mint
from tubewatch.api.main import create_app
from tubewatch.db import get_engine, init_db
from tubewatch.models import Delivery, Subscription, Watch, WatchVideo
from tubewatch.settings import Settings

pytest_plugins = ["tests.api_fixtures"]


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    app_settings = make_settings(f"sqlite:///{tmp / 'fuzz.db'}", tmp, allow_private_targets=False)
    engine = get_engine(app_settings.database_url)
    init_db(engine)
    app = create_app(app_settings, engine, migrate=False)
    key = mint(engine, "fuzzer")
    cipher = app.state.cipher
    with Session(engine) as session:
        for n in range(1, 4):
            session.add(Watch(id=n, owner="fuzzer", kind="video", video_id=f"Tk23kQRFWc{n}"))
            session.add(WatchVideo(watch_id=n, video_id=f"Tk23kQRFWc{n}"))
        session.flush()
        for n in range(1, 4):
            # Unresolvable on purpose: a test send fails fast, with no network involved.
            target = cipher.encrypt(f"json://{n}.invalid/hook")
            session.add(Subscription(id=n, owner="fuzzer", watch_id=n, targets=[target]))
            session.add(
                Delivery(
                    owner="fuzzer", subscription_id=n, event_id=f"e{n}", video_id=f"Tk23kQRFWc{n}"
                )
            )
        session.commit()
    return app, auth(key)


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the spec, read from an app that touches nothing."""
    spec = create_app(Settings(secret_key="x", database_url="sqlite://"), migrate=False).openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


@pytest.fixture(scope="module")
def api_schema(fuzz_env):
    app, _ = fuzz_env
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("method,path", _operations(), ids=[f"{m} {p}" for m, p in _operations()])
def test_no_input_is_a_server_error(api_schema, fuzz_env, method, path):
    _, headers = fuzz_env
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
    )
    def check(case):
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{method} {path} answered {response.status_code} to {case.as_curl_command()}"
        )

    check()
