"""FastAPI dependencies: one session per request (committed on success) and the authenticated actor."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tslcd.core.database import session_scope
from tslcd.core.errors import NotAuthenticated
from tslcd.security.actor import Actor

_bearer = HTTPBearer(auto_error=False, description="API token from `tslcd user ensure-admin` or POST /auth/token")


def get_session(request: Request) -> Iterator[Session]:
    """Reads skip SQLite's write lock; writes commit once, at the end of the request."""
    with session_scope(write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(request: Request, session: SessionDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    from tslcd.security.service import authenticate

    if credentials is None:
        raise NotAuthenticated("send an API token as 'Authorization: Bearer <token>'")
    return authenticate(session=session, token=credentials.credentials,
                        request_id=request.headers.get("x-request-id") or getattr(request.state, "request_id", None))


ActorDep = Annotated[Actor, Depends(get_actor)]
