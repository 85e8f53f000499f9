"""Who a CLI command acts as: the system (an operator at the server's shell) or, with `tslcd --user NAME`, a
user with that user's role and scope, so the same permission gate applies to commands as to the API."""

from contextvars import ContextVar

from sqlalchemy.orm import Session

from tslcd.core.errors import NotAuthenticated
from tslcd.security.actor import SYSTEM, Actor

_cli_user: ContextVar[str | None] = ContextVar("tslcd_cli_user", default=None)


def set_cli_user(username: str | None) -> None:
    _cli_user.set(username or None)


def cli_actor(session: Session) -> Actor:
    """The actor of the running command."""
    from tslcd.security.service import actor_for, get_user_by_name

    username = _cli_user.get()
    if username is None:
        return SYSTEM
    user = get_user_by_name(session=session, username=username)
    if not user.is_active:
        raise NotAuthenticated(f"user '{username}' is disabled")
    return actor_for(user, request_id="cli")
