"""Request dependencies: settings, database session, the caller's owner, the target cipher.

Everything comes from ``request.app.state`` (set by `create_app`), never from globals, so
several apps with different settings can live in one process (tests, `tubewatch run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tubewatch.api.keys import owner_for_key
from tubewatch.secrets import TargetCipher
from tubewatch.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="an API key from `tubewatch keys create`")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine_dep(request: Request) -> Engine:
    return request.app.state.engine


def get_session(engine: Annotated[Engine, Depends(get_engine_dep)]) -> Iterator[Session]:
    """One session per request; routes commit what they change."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_cipher(request: Request) -> TargetCipher:
    return request.app.state.cipher


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
CipherDep = Annotated[TargetCipher, Depends(get_cipher)]


def get_current_owner(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The owner of the presented API key; 401 without a valid one."""
    key = credentials.credentials if credentials else ""
    owner = owner_for_key(session, key) if key else None
    if owner is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="a valid API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return owner


CurrentOwner = Annotated[str, Depends(get_current_owner)]
OwnerDep = CurrentOwner


def not_found(what: str) -> HTTPException:
    """The same 404 for what does not exist and for what another owner has."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")
