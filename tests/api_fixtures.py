"""Fixtures for the API tests: an app on a real database file, keys for two owners.

Import the fixtures into a test module with ``from tests.api_fixtures import *``-style
explicit imports (pytest finds fixtures by name in the module's namespace).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tubewatch.api.keys import mint_key
from tubewatch.api.main import create_app
from tubewatch.db import get_engine, init_db, session_scope
from tubewatch.settings import Settings

POSTGRES_ENV = "TUBEWATCH_TEST_POSTGRES_URL"


def make_settings(database_url: str, tmp_path, **overrides) -> Settings:
    values = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "secret_key": "test-secret-key",
        "allow_private_targets": True,
    }
    values.update(overrides)
    return Settings(**values)


def mint(engine: Engine, owner: str) -> str:
    with session_scope(engine) as session:
        return mint_key(session, owner)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class ApiCtx:
    client: TestClient
    engine: Engine
    settings: Settings
    alice: dict[str, str]  # headers
    bob: dict[str, str]


@pytest.fixture
def api_settings(database_url, tmp_path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def api(api_settings) -> Iterator[ApiCtx]:
    """The app on a fresh SQLite file (migrated in its lifespan), keys for alice and bob."""
    engine = get_engine(api_settings.database_url)
    app = create_app(api_settings, engine)
    with TestClient(app) as client:
        yield ApiCtx(
            client, engine, api_settings, auth(mint(engine, "alice")), auth(mint(engine, "bob"))
        )


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set (.ci/run starts PostgreSQL and sets it)")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"tw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn in a thread on a loopback port (real HTTP)."""

    def __init__(self, settings: Settings):
        init_db(get_engine(settings.database_url))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the API did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
