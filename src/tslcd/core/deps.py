"""FastAPI dependencies of core: one database session per request, committed on success.

The authenticated actor belongs to security (security/deps.py): core knows no domain.
"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tslcd.core.database import session_scope


def get_session(request: Request) -> Iterator[Session]:
    """Reads skip SQLite's write lock; writes commit once, at the end of the request."""
    with session_scope(write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
