"""The one permission gate of the registry: who may see a row, and who may write it — before and after a change.

Every entry point asks these functions: REST, imports (each row, against the row as stored and as it will be),
the CLI (which acts as a user with `--user`), exports, topology answers and reports (which ask `visible_ids`).

Rules:
- admin, noc and auditor see everything; admin and noc change the registry; administrative units are changed
  by admins only; auditors change nothing;
- a partner sees and changes only the devices, interfaces, links and subscriptions its operator is responsible
  for (and sees the sites holding its devices). Responsibility follows the agreements: a partner can neither
  name an operator other than the one the agreements make responsible, nor override it, nor change the operator
  of a row; the row must be its operator's both before and after the change, and a link must end on at least
  one of its devices;
- an agency user sees its own agency (and its children), its premises, the equipment and access links there
  and its subscriptions, and changes nothing.
"""

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tslcd.core.errors import PermissionDenied
from tslcd.registry.models import AdminUnit, Device, Interface, Link
from tslcd.registry.resources import Resource
from tslcd.security.actor import Actor
from tslcd.security.models import Role


def visible(*, actor: Actor, res: Resource, stmt: Select) -> Select:
    """Default deny: rows outside the actor's segments are filtered out of every read."""
    if actor.sees_everything:
        return stmt
    if res.scope is not None and actor.role in (Role.partner, Role.agency):
        return res.scope(stmt, actor)
    return stmt if res.reference_data else stmt.where(False)


def restricted(actor: Actor, res: Resource) -> bool:
    """Whether the actor sees only part of this object type."""
    return not actor.sees_everything and not (res.reference_data and res.scope is None)


GATE_BATCH = 5_000  # ids per question to the database


def visible_ids(*, session: Session, actor: Actor, res: Resource, ids: Any = None) -> set[int]:
    """Which of `ids` (all, when None) the actor may see: asked of the database in batches, and not at all when the
    gate filters nothing for this actor."""
    stmt = select(res.model.id)
    scoped = visible(actor=actor, res=res, stmt=stmt)
    if ids is None:
        return set(session.scalars(scoped))
    wanted = set(ids)
    if not wanted or scoped is stmt:
        return wanted
    ordered, seen = sorted(wanted), set()
    for i in range(0, len(ordered), GATE_BATCH):
        seen.update(session.scalars(scoped.where(res.model.id.in_(ordered[i:i + GATE_BATCH]))))
    return seen


def operator_of(session: Session, res: Resource, values: dict[str, Any]) -> int | None:
    """The operator responsible for a row (an interface's is its device's)."""
    if res.model is Interface:
        return session.scalar(select(Device.operator_id).where(Device.id == values.get("device_id")))
    return values.get("operator_id")


def check_write(session: Session, actor: Actor, res: Resource, *, verb: str, before: dict[str, Any] | None,
                after: dict[str, Any] | None) -> None:
    """Refuse the change unless the actor may make it; `before` is the row as stored, `after` as it will be."""
    if res.model is AdminUnit and actor.role != Role.admin:
        raise PermissionDenied("administrative units are changed by administrators")
    if actor.edits_everything:
        return
    if actor.role == Role.partner and res.partner_edits:
        own = actor.operator_id
        if before is not None and operator_of(session, res, before) != own:
            raise PermissionDenied(f"this {res.label} is not in a segment your operator is responsible for")
        if after is not None:
            if before is not None and res.model is not Interface and after.get("operator_id") != before.get(
                    "operator_id"):
                raise PermissionDenied(f"the operator responsible for a {res.label} follows the agreements; a "
                                       "partner cannot change it")
            if operator_of(session, res, after) != own:
                raise PermissionDenied(f"the agreements do not make your operator responsible for this {res.label} "
                                       "(its tier and province)")
            if res.model is Link:
                ends = session.scalars(select(Device.operator_id).where(
                    Device.id.in_([after.get("a_device_id"), after.get("b_device_id")])))
                if own not in set(ends):
                    raise PermissionDenied("a partner's link must end on at least one device of its operator")
        return
    raise PermissionDenied(f"role {actor.role.value} cannot {verb} {res.label}s")


def partner_responsibility(actor: Actor, res: Resource, given: int | None, derived: int | None) -> None:
    """A partner may name the operator the agreements make responsible (a no-op), never another one."""
    if actor.role == Role.partner and given is not None and given != derived:
        raise PermissionDenied(f"responsibility for a {res.label} follows the agreements; a partner cannot set "
                               "operator_id to another operator or override it")
