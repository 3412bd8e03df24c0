"""Configuration from the environment (prefix ``TUBEWATCH_``), as CONTRACT.md lists it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class Settings(BaseSettings):
    # An empty variable (``TUBEWATCH_SECRET_KEY=`` in an env file) counts as unset: the
    # default applies, never an empty value (an empty SECRET_KEY would encrypt every target
    # with a key anyone can derive; an empty DATABASE_URL would crash at the first query).
    model_config = SettingsConfigDict(
        env_prefix="TUBEWATCH_", env_file=None, extra="ignore", env_ignore_empty=True
    )

    database_url: str = "sqlite:///./tubewatch.db"
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset means the embedded default"
    )
    youtube_api_key: SecretStr | None = None
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"
    poll_interval_s: float = Field(default=60, gt=0)
    quota_units_per_day: int = Field(default=10_000, gt=0)
    secret_key: SecretStr | None = Field(
        default=None, description="encrypts notification targets; generated on first run"
    )
    allow_private_targets: bool = False

    # Not in the contract's table: internal knobs with safe defaults.
    data_dir: Path = Field(
        default=Path("./tubewatch-data"), description="where generated files (secret key) live"
    )
    kafka_partitions: int = Field(default=6, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    snapshot_retention_days: int = Field(
        default=30, ge=1, description="YouTube API terms: keep API data at most 30 days"
    )
    playlist_refresh_s: float = Field(default=900, gt=0)
    digest_window_s: float = Field(default=3, ge=0)
    notifier_topic: str = Field(default="video_changes", min_length=1)
    notifier_group: str = Field(default="tubewatch-notifier", min_length=1)
    notifier_workers: int = Field(default=8, ge=1, le=256, description="parallel sends")
    notifier_lease_s: float = Field(
        default=30, gt=0, description="how long a claimed delivery is reserved for a sender"
    )
    notifier_retry_base_s: float = Field(
        default=2, gt=0, description="first retry delay cap (doubles per attempt)"
    )
    notifier_max_attempts: int = Field(
        default=8, ge=1, description="attempts before a delivery is dead"
    )
    metrics_bind: str | None = Field(
        default=None, description="HOST:PORT where poller/changes/notifier serve /metrics"
    )

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, value: str) -> str:
        # Checked here so a typo is a configuration error naming the variable, not a
        # SQLAlchemy traceback at the first query. The value is never repeated: it may hold
        # a password.
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (e.g. sqlite:///./tubewatch.db)") from None
        file = url.database if url.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(file).parent.is_dir():
            raise ValueError("the folder of the SQLite file does not exist; create it first")
        return value

    @field_validator("youtube_api_url")
    @classmethod
    def _an_http_url(cls, value: str) -> str:
        # A missing scheme would only show as failed (and still counted) calls every cycle.
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL (e.g. https://www.googleapis.com/youtube/v3)")
        return value.rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
