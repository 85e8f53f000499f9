"""Users, passwords, API tokens and role checks."""

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tslcd.core.config import get_settings
from tslcd.core.database import utcnow
from tslcd.core.errors import Conflict, DomainValidationError, NotAuthenticated, NotFound, PermissionDenied
from tslcd.security import audit
from tslcd.security.actor import SYSTEM, Actor
from tslcd.security.models import ApiToken, Role, User
from tslcd.security.schemas import UserCreate, UserUpdate

_hasher = PasswordHasher()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(user: User, request_id: str | None = None) -> Actor:
    return Actor(username=user.username, role=user.role, user_id=user.id, operator_id=user.operator_id,
                 agency_id=user.agency_id, request_id=request_id)


def require_admin(actor: Actor) -> None:
    if actor.role != Role.admin:
        raise PermissionDenied("only administrators manage users")


def _check_binding(session: Session, role: Role, operator_id: int | None, agency_id: int | None) -> None:
    """A partner names an existing operator, an agency user an existing agency (tables of the registry, which
    builds on this module, hence plain SQL)."""
    if role == Role.partner and operator_id is None:
        raise DomainValidationError("a partner user needs operator_id",
                                    errors=[{"loc": ["operator_id"], "msg": "required for role partner"}])
    if role == Role.agency and agency_id is None:
        raise DomainValidationError("an agency user needs agency_id",
                                    errors=[{"loc": ["agency_id"], "msg": "required for role agency"}])
    for column, table, label, value in (("operator_id", "operators", "operator", operator_id),
                                        ("agency_id", "agencies", "agency", agency_id)):
        if value is not None and session.scalar(text(f"SELECT 1 FROM {table} WHERE id = :id"), {"id": value}) is None:
            raise DomainValidationError(f"no {label} {value}", errors=[{"loc": [column], "msg": f"no {label} {value}"}])


def get_user_by_name(*, session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user '{username}'")
    return user


def create_user(*, session: Session, actor: Actor, user_in: UserCreate) -> User:
    """Create a user; partners are bound to an operator, agency users to an agency."""
    require_admin(actor)
    _check_binding(session, user_in.role, user_in.operator_id, user_in.agency_id)
    if session.scalar(select(User.id).where(User.username == user_in.username)):
        raise Conflict(f"user '{user_in.username}' already exists")
    user = User(username=user_in.username, full_name=user_in.full_name, role=user_in.role,
                operator_id=user_in.operator_id, agency_id=user_in.agency_id,
                password_hash=_hasher.hash(user_in.password) if user_in.password else None)
    session.add(user)
    session.flush()
    audit.record(session=session, actor=actor, action="create", obj=user)
    return user


def update_user(*, session: Session, actor: Actor, user: User, user_in: UserUpdate) -> User:
    require_admin(actor)
    before = audit.snapshot(user)
    data = user_in.model_dump(exclude_unset=True)
    if password := data.pop("password", None):
        user.password_hash = _hasher.hash(password)
    for key, value in data.items():
        setattr(user, key, value)
    _check_binding(session, user.role, user.operator_id, user.agency_id)
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=user, before=before)
    return user


def list_users(*, session: Session, actor: Actor) -> list[User]:
    require_admin(actor)
    return list(session.scalars(select(User).order_by(User.id)))


def issue_token(*, session: Session, actor: Actor, user: User, name: str = "api") -> tuple[str, ApiToken]:
    """A new random bearer token; the plain text is returned once and never stored."""
    if actor.role != Role.admin and actor.user_id != user.id:
        raise PermissionDenied("a token can only be issued to yourself")
    plain = "tslcd_" + secrets.token_urlsafe(32)
    ttl = get_settings().token_ttl_days
    token = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(plain), prefix=plain[:12],
                     expires_at=utcnow() + timedelta(days=ttl) if ttl else None)
    session.add(token)
    session.flush()
    audit.record(session=session, actor=actor, action="create", obj=token, object_type="api_token",
                 after={"user": user.username, "name": name, "prefix": token.prefix})
    return plain, token


def login(*, session: Session, username: str, password: str, name: str = "api") -> tuple[str, ApiToken, User]:
    """Exchange a username and password for a token."""
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None or not user.is_active or not user.password_hash:
            raise VerifyMismatchError
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        raise NotAuthenticated("wrong username or password") from None
    plain, token = issue_token(session=session, actor=actor_for(user), user=user, name=name)
    return plain, token, user


def authenticate(*, session: Session, token: str, request_id: str | None = None) -> Actor:
    """The actor behind a bearer token."""
    row = session.execute(
        select(ApiToken.expires_at, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _token_hash(token))
    ).first()
    if row is None:
        raise NotAuthenticated("unknown API token")
    expires_at, user = row
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=timezone.utc)
        if expires_at < datetime.now(timezone.utc):
            raise NotAuthenticated("API token expired")
    if not user.is_active:
        raise NotAuthenticated("user is disabled")
    return actor_for(user, request_id)


def ensure_admin(*, session: Session, username: str = "admin") -> tuple[User, str]:
    """The first administrator (created if missing) and a fresh token for it."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = create_user(session=session, actor=SYSTEM, user_in=UserCreate(
            username=username, full_name="Quản trị hệ thống", role=Role.admin))
    plain, _ = issue_token(session=session, actor=actor_for(user), user=user, name="make-run")
    return user, plain



def lookup_id(*, session: Session, model: type, column: str, value: str | None, label: str) -> int | None:
    """The id of the row whose natural key `column` is `value` (None passes through)."""
    if value is None:
        return None
    found = session.scalar(select(model.id).where(getattr(model, column) == value))
    if found is None:
        raise NotFound(f"no {label} '{value}'")
    return found
