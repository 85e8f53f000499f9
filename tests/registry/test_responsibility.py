from datetime import date

from sqlalchemy import select

from tests.factories import build_tiny
from tslcd.registry import schemas, service
from tslcd.registry.models import Device, Link, Subscription, Tier


def _op(session, model, key):
    col = Link.slug if model is Link else Device.name
    return session.scalar(select(model.operator_id).where(col == key))


def test_operator_follows_agreements_and_provincial_beats_nationwide(session, admin):
    t = build_tiny(session, admin)
    assert _op(session, Link, "rc1-pe1") == t.cbdtw  # access_1, nationwide CBĐTW
    assert _op(session, Link, "pe1-sw1") == t.vnpt  # access_2 in Hà Nội: nationwide VNPT
    assert _op(session, Link, "rc1-pe48") == t.viettel  # access_2 in Đà Nẵng: Viettel's provincial agreement
    assert _op(session, Device, "cpe-a") == t.vnpt  # premises
    assert session.scalar(select(Subscription.operator_id).join(Link, Link.id == Subscription.access_link_id)
                          .where(Link.slug == "sw1-cpea")) == t.vnpt


def test_new_agreement_moves_responsibility_unless_overridden(session, admin):
    t = build_tiny(session, admin)
    link_id = session.scalar(select(Link.id).where(Link.slug == "pe1-cpeb-2"))
    service.update_object(session=session, actor=admin, res=service.resource("links"), obj_id=link_id,
                          obj_in=schemas.LinkUpdate(operator_id=t.cbdtw))
    service.create_object(session=session, actor=admin, res=service.resource("agreements"),
                          obj_in=schemas.AgreementCreate(operator_id=t.viettel, tier=Tier.access_2,
                                                         province_id=t.province_id, valid_from=date(2025, 7, 1)))
    assert _op(session, Link, "pe1-sw1") == t.viettel
    assert _op(session, Link, "pe1-cpeb-2") == t.cbdtw  # overridden by hand: stays
    assert session.scalar(select(Subscription.operator_id).join(Link, Link.id == Subscription.access_link_id)
                          .where(Link.slug == "pe1-cpeb-1")) == t.viettel
