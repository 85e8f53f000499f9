"""The tiny network of tests/factories.py, and a way to feed it rates."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import Tiny, build_tiny
from tslcd.registry.models import Link
from tslcd.security.actor import Actor
from tslcd.telemetry import service
from tslcd.telemetry.schemas import RateSample

M, G = 10**6, 10**9


@pytest.fixture
def tiny(session: Session, admin: Actor) -> Tiny:
    return build_tiny(session, admin)


@pytest.fixture
def day() -> datetime:
    """Midnight UTC yesterday: recent enough for raw rates, complete enough for roll-ups."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def link(session: Session, slug: str) -> Link:
    return session.scalar(select(Link).where(Link.slug == slug))


def sample(interface_id: int, ts: datetime, in_bps: float | None = 0.0, out_bps: float | None = 0.0, *,
           up: bool | None = True, speed: int | None = None, interval: float = 300.0) -> RateSample:
    return RateSample(interface_id, ts, interval, in_bps, out_bps, up, speed)


def feed(session: Session, *samples: RateSample):
    return service.ingest(session=session, samples=list(samples))
