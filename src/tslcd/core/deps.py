"""FastAPI dependencies of core: one database session per request, committed on success.

The authenticated actor belongs to security (security/deps.py): core knows no domain.
"""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from tslcd.core.config import get_settings
from tslcd.core.database import session_scope
from tslcd.core.errors import PayloadTooLarge
from tslcd.core.inputs import ID_MAX, INT64_MAX

# Every object id in a path: a positive integer that fits an id column (32 bits on PostgreSQL); larger numbers are
# refused before any database sees them.
ObjectId = Annotated[int, Path(ge=1, le=ID_MAX, description="object id")]
# Pagination of every list.
Offset = Annotated[int, Query(ge=0, le=INT64_MAX, description="rows to skip")]


def get_session(request: Request) -> Iterator[Session]:
    """Reads skip SQLite's write lock; writes commit once, at the end of the request."""
    with session_scope(write=request.method not in ("GET", "HEAD", "OPTIONS")) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The request body, refused with 413 beyond `limit` bytes (the import limit by default) before it is all read."""
    limit = limit or get_settings().import_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {int(declared):,} bytes; at most {limit:,} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def charset_of(request: Request) -> str | None:
    """The charset a Content-Type names (text/csv; charset=windows-1258), if any."""
    for part in request.headers.get("content-type", "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return None
