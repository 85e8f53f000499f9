"""FastAPI dependency for the authenticated actor: the user behind the request's bearer token."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tslcd.core.deps import SessionDep
from tslcd.core.errors import NotAuthenticated
from tslcd.security.actor import Actor
from tslcd.security.service import authenticate

_bearer = HTTPBearer(auto_error=False, description="API token from `tslcd user ensure-admin` or POST /auth/token")


def get_actor(request: Request, session: SessionDep,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    if credentials is None:
        raise NotAuthenticated("send an API token as 'Authorization: Bearer <token>'")
    return authenticate(session=session, token=credentials.credentials,
                        request_id=getattr(request.state, "request_id", None) or request.headers.get("x-request-id"))


ActorDep = Annotated[Actor, Depends(get_actor)]
