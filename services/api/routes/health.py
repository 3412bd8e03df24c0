"""``/healthz`` (liveness), ``/readyz`` (database and broker), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers: nothing more is checked."""
    return {"status": "ok"}


def _database_ok(request: Request) -> str | None:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        log.warning("readiness: database check failed: %s", type(exc).__name__)
        return f"database unavailable ({type(exc).__name__})"
    return None


def _broker_ok(bootstrap: str) -> str | None:
    # Imported here: without a broker configured the API never loads the Kafka client.
    from confluent_kafka.admin import AdminClient

    try:
        # log_level 0: librdkafka would print a line to stderr for every reconnect attempt
        # (dozens a probe while the broker is down); the warning below says it once.
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=2)
    except Exception as exc:  # KafkaException on timeout or refusal
        log.warning("readiness: broker check failed: %s", type(exc).__name__)
        return f"broker unavailable ({type(exc).__name__})"
    return None


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when the database (and the broker, when configured) answers; else 503."""
    checks: dict[str, str] = {}
    problem = _database_ok(request)
    checks["database"] = problem or "ok"
    bootstrap = request.app.state.settings.kafka_bootstrap
    if bootstrap:
        broker_problem = _broker_ok(bootstrap)
        checks["broker"] = broker_problem or "ok"
        problem = problem or broker_problem
    code = status.HTTP_503_SERVICE_UNAVAILABLE if problem else status.HTTP_200_OK
    return JSONResponse({"status": "not ready" if problem else "ok", "checks": checks}, code)


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Every metric in the process's default registry (all services share it in `run`)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
