"""Listing with filters and pagination, shared by every list endpoint."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    limit: int
    offset: int
    results: list[T]


def paginate(*, session: Session, stmt: Select, limit: int, offset: int, order_by: Any) -> tuple[int, list[Any]]:
    """Total count and one page of the rows a statement selects."""
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.order_by(order_by).limit(limit).offset(offset)).all()
    return count or 0, list(rows)
