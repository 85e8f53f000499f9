"""Login, users and the audit log."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from tslcd.core.deps import ObjectId, Offset, SessionDep
from tslcd.core.inputs import INT64_MAX
from tslcd.core.errors import NotFound
from tslcd.core.listing import Page
from tslcd.security import audit, service
from tslcd.security.deps import ActorDep
from tslcd.security.models import User
from tslcd.security.schemas import (AuditRead, AuditVerifyRead, TokenIssued, TokenRequest, UserCreate, UserRead,
                                    UserUpdate)

router = APIRouter()


@router.post("/auth/token", response_model=TokenIssued, tags=["auth"], summary="Exchange a password for a token",
             responses={401: {"description": "Wrong username or password"},
                        429: {"description": "Too many failed logins: try again after Retry-After seconds"}})
def token_view(body: TokenRequest, session: SessionDep, request: Request):
    plain, token, user = service.login(session=session, username=body.username, password=body.password,
                                       name=body.name, address=request.client.host if request.client else None)
    return TokenIssued(token=plain, expires_at=token.expires_at, username=user.username, role=user.role)


@router.get("/auth/me", response_model=UserRead, tags=["auth"], summary="Who the token belongs to")
def me_view(session: SessionDep, actor: ActorDep):
    return service.get_user_by_name(session=session, username=actor.username)


@router.get("/users", response_model=list[UserRead], tags=["users"])
def list_users_view(session: SessionDep, actor: ActorDep):
    return service.list_users(session=session, actor=actor)


@router.post("/users", response_model=UserRead, status_code=201, tags=["users"])
def create_user_view(user_in: UserCreate, session: SessionDep, actor: ActorDep):
    return service.create_user(session=session, actor=actor, user_in=user_in)


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"])
def update_user_view(user_id: ObjectId, user_in: UserUpdate, session: SessionDep, actor: ActorDep):
    service.require_admin(actor)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return service.update_user(session=session, actor=actor, user=user, user_in=user_in)


@router.get("/audit", response_model=Page[AuditRead], tags=["audit"], summary="The audit log, newest first")
def audit_view(session: SessionDep, actor: ActorDep,
               object_type: Annotated[str | None, Query(max_length=40)] = None,
               object_id: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
               actor_name: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 50, offset: Offset = 0):
    count, rows = audit.list_records(session=session, actor=actor, object_type=object_type, object_id=object_id,
                                     actor_name=actor_name, limit=limit, offset=offset)
    results = []
    for r in rows:
        item = AuditRead.model_validate(r)
        item.before, item.after = audit.redact(r.object_type, r.before), audit.redact(r.object_type, r.after)
        results.append(item)
    return Page[AuditRead](count=count, limit=limit, offset=offset, results=results)


@router.get("/audit/verify", response_model=AuditVerifyRead, tags=["audit"],
            summary="Check the keyed chain of the audit log and its checkpoints")
def audit_verify_view(session: SessionDep, actor: ActorDep,
                      full: Annotated[bool, Query(description="re-check every record, not only those after the "
                                                              "last verified checkpoint")] = False):
    result = audit.verify(session=session, actor=actor, full=full)
    return AuditVerifyRead.model_validate(result, from_attributes=True)
