"""What a user is bound to: a partner user to an operator, an agency user to an agency.

Operators and agencies belong to the registry, which builds on security; security knows none of its models or
tables. The registry registers how to find them (registry/users.py, at import) and security asks through
`exists` and `find_id`.
"""

from typing import Literal, Protocol

from sqlalchemy.orm import Session

from tslcd.core.errors import NotFound

Kind = Literal["operator", "agency"]


class Resolver(Protocol):
    def exists(self, session: Session, kind: Kind, obj_id: int) -> bool:
        """Whether the operator or agency with this id exists."""

    def find_id(self, session: Session, kind: Kind, key: str) -> int | None:
        """The id of the operator (by slug) or agency (by code), or None."""


_resolver: Resolver | None = None


def register(resolver: Resolver) -> None:
    global _resolver
    _resolver = resolver


def resolver() -> Resolver:
    if _resolver is None:
        raise RuntimeError("no operator/agency resolver is registered (tslcd.registry.users registers it on import)")
    return _resolver


def exists(session: Session, kind: Kind, obj_id: int) -> bool:
    return resolver().exists(session, kind, obj_id)


def find_id(session: Session, kind: Kind, key: str | None) -> int | None:
    """The id for a slug or code typed by a person (None passes through); NotFound names what is missing."""
    if key is None:
        return None
    found = resolver().find_id(session, kind, key)
    if found is None:
        raise NotFound(f"no {kind} '{key}'")
    return found
