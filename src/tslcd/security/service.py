"""Users, passwords, API tokens, login throttling and role checks."""

import hashlib
import math
import secrets
import unicodedata
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tslcd.core.config import get_settings
from tslcd.core.database import utcnow
from tslcd.core.errors import (Conflict, DomainValidationError, NotAuthenticated, NotFound, PermissionDenied,
                               TooManyRequests)
from tslcd.security import audit, bindings
from tslcd.security.actor import SYSTEM, Actor
from tslcd.security.models import ApiToken, LoginThrottle, Role, User
from tslcd.security.schemas import UserCreate, UserUpdate

_hasher = PasswordHasher()
_MAX_LOCKOUT_S = 86_400


class LoginFailed(NotAuthenticated):
    """Wrong username or password; the failure is counted and audited even though the request fails."""

    keep_writes = True


class LoginLocked(TooManyRequests):
    """Too many failed logins for this username or address; the refusal is audited."""

    keep_writes = True


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(user: User, request_id: str | None = None) -> Actor:
    return Actor(username=user.username, role=user.role, user_id=user.id, operator_id=user.operator_id,
                 agency_id=user.agency_id, request_id=request_id)


def require_admin(actor: Actor) -> None:
    if actor.role != Role.admin:
        raise PermissionDenied("only administrators manage users")


def _check_binding(session: Session, role: Role, operator_id: int | None, agency_id: int | None) -> None:
    """A partner names an existing operator, an agency user an existing agency (asked of the registry through
    security/bindings.py: security knows none of its models)."""
    if role == Role.partner and operator_id is None:
        raise DomainValidationError("a partner user needs operator_id",
                                    errors=[{"loc": ["operator_id"], "msg": "required for role partner"}])
    if role == Role.agency and agency_id is None:
        raise DomainValidationError("an agency user needs agency_id",
                                    errors=[{"loc": ["agency_id"], "msg": "required for role agency"}])
    for column, kind, value in (("operator_id", "operator", operator_id), ("agency_id", "agency", agency_id)):
        if value is not None and not bindings.exists(session, kind, value):
            raise DomainValidationError(f"no {kind} {value}", errors=[{"loc": [column], "msg": f"no {kind} {value}"}])


def get_user_by_name(*, session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user '{username}'")
    return user


def create_user(*, session: Session, actor: Actor, user_in: UserCreate) -> User:
    """Create a user; partners are bound to an operator, agency users to an agency."""
    require_admin(actor)
    audit.lock(session)
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
    audit.lock(session)
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
    audit.lock(session)
    plain = "tslcd_" + secrets.token_urlsafe(32)
    ttl = get_settings().token_ttl_days
    token = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(plain), prefix=plain[:12],
                     expires_at=utcnow() + timedelta(days=ttl) if ttl else None)
    session.add(token)
    session.flush()
    audit.record(session=session, actor=actor, action="create", obj=token, object_type="api_token",
                 after={"user": user.username, "name": name, "prefix": token.prefix})
    return plain, token


def _user_key(username: str) -> str:
    return unicodedata.normalize("NFC", username).strip().casefold()[:200]


_dummy_hash: str | None = None


def _check_password(user: User | None, password: str) -> bool:
    """Argon2 check; an unknown or password-less user costs the same time, so timing tells nothing either."""
    global _dummy_hash
    if user is None or not user.password_hash:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        try:
            _hasher.verify(_dummy_hash, password)
        except VerificationError:
            pass
        return False
    try:
        return _hasher.verify(user.password_hash, password) and user.is_active
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _throttle_rows(session: Session, username: str, address: str | None) -> list[tuple[LoginThrottle | None, str,
                                                                                          str, int]]:
    settings = get_settings()
    keys = [("user", _user_key(username), settings.login_max_failures)]
    if address:
        keys.append(("address", address[:200], settings.login_max_failures_per_address))
    return [(session.get(LoginThrottle, (kind, key)), kind, key, limit) for kind, key, limit in keys]


def _count_failure(session: Session, row: LoginThrottle | None, kind: str, key: str, limit: int,
                   now: datetime) -> int | None:
    """Count one failure; the lock-out it starts (seconds), if it reaches the limit."""
    settings = get_settings()
    if row is None:
        row = LoginThrottle(kind=kind, key=key, failures=0, window_start=now, lockouts=0)
        session.add(row)
    if row.locked_until is not None and now - row.locked_until > timedelta(seconds=_MAX_LOCKOUT_S):
        row.lockouts = 0  # a day without trouble since the last lock-out: start again from the shortest
    if now - row.window_start > timedelta(seconds=settings.login_window_s):
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures < limit:
        return None
    seconds = min(settings.login_lockout_s * 2 ** min(row.lockouts, 20), _MAX_LOCKOUT_S)
    row.locked_until, row.lockouts, row.failures, row.window_start = (now + timedelta(seconds=seconds),
                                                                      row.lockouts + 1, 0, now)
    return seconds


def _audit_login(session: Session, action: str, username: str, note: str) -> None:
    audit.record_many(session=session, actor=SYSTEM, changes=[
        audit.Change(action, "login", None, username, note=note)])


def login(*, session: Session, username: str, password: str, name: str = "api",
          address: str | None = None) -> tuple[str, ApiToken, User]:
    """Exchange a username and password for a token.

    Failed logins are counted per username (whether or not it exists) and per client address, in the database so
    that every server process and a restart see them; after too many in the window the username or address is
    locked out for a time that doubles with each lock-out (429 with Retry-After). Failures, lock-outs and refused
    attempts are audited, without the password; the answer never says whether the user exists.
    """
    audit.lock(session)
    now = utcnow()
    shown = username[:64]
    where = f"from {address}" if address else "from an unknown address"
    rows = _throttle_rows(session, username, address)
    locked = [row.locked_until for row, *_ in rows if row is not None and row.locked_until is not None
              and row.locked_until > now]
    if locked:
        retry = max(1, math.ceil((max(locked) - now).total_seconds()))
        _audit_login(session, "login_refused", shown, f"{where}: locked out for {retry} s more")
        session.flush()
        raise LoginLocked(f"too many failed logins; try again in {retry} s", retry_after=retry)
    user = session.scalar(select(User).where(User.username == username))
    if not _check_password(user, password):
        lockouts = [(kind, _count_failure(session, row, kind, key, limit, now)) for row, kind, key, limit in rows]
        session.flush()
        _audit_login(session, "login_failed", shown, f"{where}: wrong username or password")
        for kind, seconds in lockouts:
            if seconds:
                _audit_login(session, "login_locked", shown,
                             f"{where}: the {kind} is locked out for {seconds} s after repeated failures")
        raise LoginFailed("wrong username or password")
    row = rows[0][0]
    if row is not None and (row.failures or row.lockouts or row.locked_until):
        row.failures, row.lockouts, row.locked_until, row.window_start = 0, 0, None, now
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
