"""The FastAPI application: `create_app(settings)` builds it, nothing starts by itself.

`tubewatch api` serves it with uvicorn; `tubewatch run` mounts the same app next to the other
services. The schema is brought to head in the lifespan (or by the runner calling `init_db`
itself); no background threads are started here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from tubewatch import __version__
from tubewatch.api.limits import DEFAULT_MAX_BODY, BodySizeLimit
from tubewatch.api.metrics import RequestMetrics
from tubewatch.api.routes import deliveries, health, quota, subscriptions, watches
from tubewatch.db import get_engine, init_db
from tubewatch.secrets import TargetCipher
from tubewatch.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Watches (a playlist or a video), subscriptions (apprise targets, metrics,
minimum deltas), the delivery log and the YouTube quota. Authenticate with
`Authorization: Bearer <key>` (mint keys with `tubewatch keys create --name NAME`)."""


def _readable_errors(errors: list[dict]) -> list[dict]:
    """Validation errors without the rejected input: it may be a target with its token."""
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error["type"]}
        for error in errors
    ]


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder({"detail": _readable_errors(list(exc.errors()))}),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI answers a body it cannot decode (not UTF-8, nested too deep for the JSON
    parser) with a bare 400; that is invalid input, so a 422 like every other bad body."""
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.__cause__ is not None:
        cause = exc.__cause__
        problem = (
            "not valid UTF-8"
            if isinstance(cause, UnicodeError)
            else "nested too deeply"
            if isinstance(cause, RecursionError)
            else "unreadable"
        )
        return JSONResponse(
            {
                "detail": [
                    {"loc": ["body"], "msg": f"the JSON body is {problem}", "type": "json_invalid"}
                ]
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return await http_exception_handler(request, exc)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # The type only: an exception's text can carry a database URL or a target.
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, None),
    )
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    migrate: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The API for ``settings``.

    ``engine`` defaults to the shared one for ``settings.database_url``; ``migrate=False``
    leaves the schema to the caller (a runner that already ran `init_db`).
    """
    engine = engine if engine is not None else get_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            init_db(engine)
        yield

    app = FastAPIOffline(
        title="tubewatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.cipher = TargetCipher.from_settings(settings)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(BodySizeLimit, max_body=max_body)
    app.add_middleware(RequestMetrics)  # outermost: counts the 413s too
    for module in (watches, subscriptions, deliveries, quota, health):
        app.include_router(module.router)
    return app
