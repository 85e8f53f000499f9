"""Registry rules: role scopes, derived fields, uniqueness, dependents, and all-or-nothing bulk import."""

from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from tslcd.core.bulk import ImportReport, Rows, read_rows, write_rows
from tslcd.core.database import insert_rows
from tslcd.core.errors import Conflict, DomainValidationError, NotFound, PermissionDenied
from tslcd.core.listing import paginate
from tslcd.registry.context import Context
from tslcd.registry.codes import check_agency_code
from tslcd.registry.models import (AdminUnit, Agency, Agreement, Device, Interface, Link, SnmpCredential,
                                   Subscription)
from tslcd.registry.resources import RESOURCES, FieldError, Ref, Resource, key_filters
from tslcd.security import audit
from tslcd.security.actor import Actor
from tslcd.security.models import Role

SECRET_FIELDS = {"secret"}


def resource(name: str) -> Resource:
    try:
        return RESOURCES[name]
    except KeyError:
        raise NotFound(f"no object type '{name}' (one of: {', '.join(RESOURCES)})") from None


# Permissions
def visible(*, actor: Actor, res: Resource, stmt: Select) -> Select:
    """Default deny: rows outside the actor's segments are filtered out of every read."""
    if actor.sees_everything:
        return stmt
    if res.scope is not None and actor.role in (Role.partner, Role.agency):
        return res.scope(stmt, actor)
    return stmt if res.reference_data else stmt.where(False)


def _check_edit(ctx: Context, actor: Actor, res: Resource, values: dict[str, Any], verb: str) -> None:
    """Admins and the NOC edit the registry (units: admins only); partners edit their own segments."""
    if res.model is AdminUnit and actor.role != Role.admin:
        raise PermissionDenied("administrative units are changed by administrators")
    if actor.edits_everything:
        return
    if actor.role == Role.partner and res.partner_edits:
        operator_id = values.get("operator_id")
        if res.model is Interface:
            operator_id = ctx.session.scalar(select(Device.operator_id).where(Device.id == values["device_id"]))
        if operator_id == actor.operator_id:
            return
        raise PermissionDenied(f"this {res.label} is not in a segment your operator is responsible for")
    raise PermissionDenied(f"role {actor.role.value} cannot {verb} {res.label}s")


# Reads
def list_objects(*, session: Session, actor: Actor, res: Resource, filters: dict[str, list[Any]] | None = None,
                 q: str | None = None, as_of: date | None = None, limit: int = 50, offset: int = 0):
    """One page of visible objects matching the filters."""
    model = res.model
    stmt = visible(actor=actor, res=res, stmt=select(model))
    ctx = Context(session)
    for param, values in (filters or {}).items():
        if not values:
            continue
        if param in res.filters:
            column = getattr(model, res.filters[param])
            values = [_typed(param, column, v) for v in values]
        else:  # a related object named by its natural key: site=hn-01, province=01
            ref = key_filters(res)[param]
            column = getattr(model, ref.target)
            values = [_natural_key_id(ctx, ref, v) for v in values]
        stmt = stmt.where(column.in_(values) if len(values) > 1 else column == values[0])
    if q:
        stmt = stmt.where(or_(*[getattr(model, c).ilike(f"%{q}%") for c in res.search]))
    if as_of is not None:
        if not hasattr(model, "valid_from"):
            raise DomainValidationError(f"{res.label}s have no validity dates; as_of does not apply")
        stmt = stmt.where(or_(model.valid_from.is_(None), model.valid_from <= as_of),
                          or_(model.valid_to.is_(None), model.valid_to >= as_of))
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=model.id)


def _typed(param: str, column: Any, value: Any) -> Any:
    try:
        return column.type.python_type(value)
    except (ValueError, TypeError, NotImplementedError):
        raise DomainValidationError(f"{param}: '{value}' is not a valid value",
                                    errors=[{"loc": ["query", param], "msg": f"invalid value '{value}'"}]) from None


def _natural_key_id(ctx: Context, ref: Ref, key: str) -> int:
    found = ctx.unit_ref(key) if ref.model is AdminUnit else ctx.key_map(ref.model).get(key)
    if found is None:
        raise DomainValidationError(f"no {ref.column.replace('_', ' ')} '{key}'",
                                    errors=[{"loc": ["query", ref.column], "msg": f"no {ref.column} '{key}'"}])
    return found


def get_object(*, session: Session, actor: Actor, res: Resource, obj_id: int):
    obj = session.scalar(visible(actor=actor, res=res, stmt=select(res.model).where(res.model.id == obj_id)))
    if obj is None:
        raise NotFound(f"no {res.label} {obj_id}")
    return obj


# Writes
def _columns(res: Resource) -> set[str]:
    return {c.key for c in res.model.__table__.columns}


def _check_refs(ctx: Context, res: Resource, values: dict[str, Any]) -> None:
    for ref in res.refs:
        target = values.get(ref.target)
        if target is not None and ctx.session.get(ref.model, target) is None:
            label = next(r.label for r in RESOURCES.values() if r.model is ref.model)
            raise FieldError(ref.target, f"no {label} {target}")


def _check_unique(session: Session, res: Resource, values: dict[str, Any], own_id: int | None = None) -> None:
    key = res.key_of(values)
    if key is None:
        return
    stmt = select(res.model.id).where(and_(*[
        getattr(res.model, k).is_(None) if v is None else getattr(res.model, k) == v for k, v in zip(res.key, key)]))
    found = session.scalar(stmt)
    if found is not None and found != own_id:
        shown = ", ".join(f"{k}={v}" for k, v in zip(res.key, key))
        raise Conflict(f"a {res.label} with {shown} already exists (id {found})")


def _check_link_ends(session: Session, values: dict[str, Any], own_id: int | None = None) -> None:
    for side in ("a", "b"):
        iid = values[f"{side}_interface_id"]
        used = session.scalar(select(Link.slug).where(or_(Link.a_interface_id == iid, Link.b_interface_id == iid),
                                                       Link.id != (own_id or 0)))
        if used:
            raise FieldError(f"{side}_interface_id", f"interface {iid} already ends link '{used}'")


def _prepare(ctx: Context, res: Resource, values: dict[str, Any]) -> None:
    try:
        _check_refs(ctx, res, values)
        if res.prepare:
            res.prepare(ctx, values)
        if res.model is Link:
            _check_link_ends(ctx.session, values, values.get("id"))
    except FieldError as exc:
        raise DomainValidationError(exc.msg, errors=[{"loc": [exc.column], "msg": exc.msg}]) from None


def _public(values: dict[str, Any]) -> dict[str, Any]:
    return {k: audit.jsonable(v) for k, v in values.items() if k not in SECRET_FIELDS}


def create_object(*, session: Session, actor: Actor, res: Resource, obj_in: BaseModel):
    """Create one object after its cross-object rules and the actor's rights are checked."""
    ctx = Context(session)
    values = obj_in.model_dump()
    _prepare(ctx, res, values)
    _check_edit(ctx, actor, res, values, "create")
    _check_unique(session, res, values)
    obj = res.model(**{k: v for k, v in values.items() if k in _columns(res)})
    session.add(obj)
    session.flush()
    audit.record(session=session, actor=actor, action="create", obj=obj)
    _after_write(session, actor, res, obj)
    return obj


def update_object(*, session: Session, actor: Actor, res: Resource, obj_id: int, obj_in: BaseModel):
    obj = get_object(session=session, actor=actor, res=res, obj_id=obj_id)
    ctx = Context(session)
    before = audit.snapshot(obj)
    _check_edit(ctx, actor, res, {**before}, "change")
    changes = obj_in.model_dump(exclude_unset=True)
    values = {**{c: getattr(obj, c) for c in _columns(res)}, **changes}
    if "operator_id" in changes:
        values["operator_override"] = changes["operator_id"] is not None
    _prepare(ctx, res, values)
    _check_edit(ctx, actor, res, values, "change")
    _check_unique(session, res, values, own_id=obj.id)
    for key, value in values.items():
        if key in _columns(res) and key != "id":
            setattr(obj, key, value)
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=obj, before=before)
    _after_write(session, actor, res, obj)
    return obj


def delete_object(*, session: Session, actor: Actor, res: Resource, obj_id: int) -> None:
    """Delete an object no other object uses; otherwise 409 listing what uses it."""
    obj = get_object(session=session, actor=actor, res=res, obj_id=obj_id)
    ctx = Context(session)
    _check_edit(ctx, actor, res, audit.snapshot(obj), "delete")
    errors = []
    for model, column, label in res.dependents:
        n = session.scalar(select(func.count()).select_from(model).where(getattr(model, column) == obj.id))
        if n:
            errors.append({"loc": [column], "msg": f"{n} {label} reference {res.label} {obj}"})
    if errors:
        raise Conflict("; ".join(e["msg"] for e in errors), errors=errors, title=f"The {res.label} is still in use")
    before = audit.snapshot(obj)
    session.delete(obj)
    session.flush()
    audit.record(session=session, actor=actor, action="delete", obj=obj, before=before)
    _after_write(session, actor, res, obj)


def _after_write(session: Session, actor: Actor, res: Resource, obj: Any) -> None:
    """Agreements move responsibility; a link's operator carries over to the subscriptions on it."""
    if res.model is Agreement:
        recompute_responsibility(session=session, actor=actor)
    elif res.model is Link:
        _sync_subscriptions(session, actor, obj)


def _sync_subscriptions(session: Session, actor: Actor, link: Link) -> None:
    stale = session.scalars(select(Subscription).where(Subscription.access_link_id == link.id,
                                                        Subscription.operator_id.is_distinct_from(link.operator_id)))
    for sub in stale:
        before = audit.snapshot(sub)
        sub.operator_id = link.operator_id
        session.flush()
        audit.record(session=session, actor=actor, action="update", obj=sub, before=before,
                     note="operator follows the access link")


# Import and export
def _export_columns(res: Resource) -> list[str]:
    ref_targets = {r.target for r in res.refs}
    plain = [f for f in res.create.model_fields if f not in ref_targets and f not in ("a_interface_id",
                                                                                      "b_interface_id")]
    if res.model is Link:
        plain += ["a_device", "a_interface", "b_device", "b_interface"]
    return ["id", *plain, *[r.column for r in res.refs]]


def _resolve(ctx: Context, res: Resource, line: int, raw: dict[str, Any], rows: Rows,
             in_file: set[str], deferred: dict[int, str]) -> dict[str, Any] | None:
    """Turn natural-key columns into ids; None when a reference cannot be resolved.

    A reference to a row of the same file (an agency's parent listed above or below it) is deferred: the row is
    written after the one it names.
    """
    values = {k: v for k, v in raw.items() if k not in {r.column for r in res.refs}}
    ok = True
    for ref in res.refs:
        if raw.get(ref.target) is not None:  # a raw id instead of a natural key
            try:
                _check_refs(ctx, res, {ref.target: int(raw[ref.target])})
            except (FieldError, ValueError):
                rows.add(line, f"no {ref.column.replace('_', ' ')} with id {raw[ref.target]}", ref.target)
                ok = False
        key = raw.get(ref.column)
        if key is None:
            continue
        found = ctx.unit_ref(str(key)) if ref.model is AdminUnit else ctx.key_map(ref.model).get(str(key))
        if found is None and ref.model is res.model and _same_file_key(res, key) in in_file:
            deferred[line] = _same_file_key(res, key)
            continue
        if found is None:
            rows.add(line, f"no {ref.column.replace('_', ' ')} '{key}'", ref.column)
            ok = False
        values[ref.target] = found
    if res.model is Link:
        for side in ("a", "b"):
            device, name = values.pop(f"{side}_device", None), values.pop(f"{side}_interface", None)
            if device is None or name is None:
                if values.get(f"{side}_interface_id") is None:
                    rows.add(line, f"{side}_device and {side}_interface are required", f"{side}_interface")
                    ok = False
                continue
            iid = ctx.interface_ref(str(device), str(name))
            if iid is None:
                rows.add(line, f"device '{device}' has no interface '{name}'", f"{side}_interface")
                ok = False
            values[f"{side}_interface_id"] = iid
    return values if ok else None


def import_objects(*, session: Session, actor: Actor, res: Resource, data: bytes | str, fmt: str) -> ImportReport:
    """Validate every row, then write all of them or none; a row with an `id` updates that object."""
    rows = Rows(res.name)
    ctx = Context(session)
    ctx.preload_for(res.model.__tablename__)
    audit.record_many(session=session, actor=actor, changes=[])  # takes the audit lock before the checks
    creates: list[tuple[int, dict[str, Any]]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    seen: dict[tuple, int] = {}
    seen_ends: dict[int, int] = {}
    existing_keys = _existing_keys(session, res)
    columns = _columns(res)
    parsed = list(read_rows(data, fmt))
    self_ref = next((r for r in res.refs if r.model is res.model), None)
    in_file = {_same_file_key(res, raw[res.key[0]]) for _, raw in parsed
               if self_ref and len(res.key) == 1 and raw.get(res.key[0]) and raw.get("id") is None}
    deferred: dict[int, str] = {}
    for line, raw in parsed:
        obj_id = raw.pop("id", None)
        values = _resolve(ctx, res, line, raw, rows, in_file, deferred)
        if values is None:
            continue
        try:
            if obj_id is not None:
                current = session.get(res.model, int(obj_id))
                if current is None:
                    rows.add(line, f"no {res.label} with id {obj_id} to update", "id")
                    continue
                changes = res.update.model_validate(values).model_dump(exclude_unset=True)
                merged = {**{c: getattr(current, c) for c in columns}, **changes}
                if "operator_id" in changes:
                    merged["operator_override"] = changes["operator_id"] is not None
                values = merged
            else:
                values = res.create.model_validate(values).model_dump()
            if res.prepare:
                res.prepare(ctx, values)
            _check_edit(ctx, actor, res, values, "import")
        except ValidationError as exc:
            rows.add_validation(line, exc)
            continue
        except FieldError as exc:
            rows.add(line, exc.msg, exc.column)
            continue
        except PermissionDenied as exc:
            rows.add(line, exc.detail)
            continue
        key = res.key_of(values)
        if key is not None:
            if key in seen:
                rows.add(line, f"same {', '.join(res.key)} as row {seen[key]}", res.key[-1])
                continue
            seen[key] = line
            holder = existing_keys.get(key)
            if holder is not None and holder != (int(obj_id) if obj_id is not None else None):
                rows.add(line, f"a {res.label} with {', '.join(res.key)} {'/'.join(map(str, key))} already "
                         f"exists (id {holder}); give its id to update it", res.key[-1])
                continue
        if res.model is Link and not _link_ends_free(line, values, obj_id, seen_ends, existing_ends(session, ctx),
                                                     rows):
            continue
        row = {k: v for k, v in values.items() if k in columns}
        if line in deferred:
            row["_parent_key"] = deferred[line]
        (updates if obj_id is not None else creates).append((line, row))
    generations = _generations(res, creates, deferred, rows)
    rows.raise_if_any()
    report = ImportReport(object_type=res.name)
    for generation in generations:
        report.created += _write(session=session, actor=actor, res=res, creates=generation, updates=[]).created
    report.updated = _write(session=session, actor=actor, res=res, creates=[], updates=updates).updated
    if res.model is Agreement:
        recompute_responsibility(session=session, actor=actor)
    return report


def _same_file_key(res: Resource, key: Any) -> str:
    """A natural key as stored, so that a parent named in another spelling still matches (agency codes)."""
    if res.model is Agency:
        try:
            return check_agency_code(str(key))
        except ValueError:
            return str(key)
    return str(key)


def _generations(res: Resource, creates: list[tuple[int, dict[str, Any]]], deferred: dict[int, str],
                 rows: Rows) -> list[list[tuple[int, dict[str, Any]]]]:
    """Creates in the order they can be written: rows naming a parent of the same file after that parent."""
    if not deferred:
        return [creates]
    key = res.key[0]
    target = next(r.target for r in res.refs if r.model is res.model)
    written: set[str] = set()
    pending, generations = creates, []
    while pending:
        ready = [c for c in pending if c[0] not in deferred or deferred[c[0]] in written]
        if not ready:
            for line, _ in pending:
                rows.add(line, f"parent '{deferred[line]}' is not written before it: the rows form a cycle or "
                         "name a row that has an error", target)
            return []
        generations.append(ready)
        written |= {str(row[key]) for _, row in ready}
        ready_lines = {line for line, _ in ready}
        pending = [c for c in pending if c[0] not in ready_lines]
    return generations


def _existing_keys(session: Session, res: Resource) -> dict[tuple, int]:
    if not res.key:
        return {}
    cols = [getattr(res.model, k) for k in res.key]
    return {tuple(r[:-1]): r[-1] for r in session.execute(select(*cols, res.model.id))}


def existing_ends(session: Session, ctx: Context) -> dict[int, tuple[int, str]]:
    cache = getattr(ctx, "_link_ends", None)
    if cache is None:
        cache = {}
        for lid, a, b, slug in session.execute(select(Link.id, Link.a_interface_id, Link.b_interface_id, Link.slug)):
            cache[a] = cache[b] = (lid, slug)
        ctx._link_ends = cache
    return cache


def _link_ends_free(line: int, values: dict[str, Any], obj_id: Any, seen_ends: dict[int, int],
                    ends: dict[int, tuple[int, str]], rows: Rows) -> bool:
    ok = True
    for side in ("a", "b"):
        iid = values[f"{side}_interface_id"]
        holder = ends.get(iid)
        if holder is not None and holder[0] != (int(obj_id) if obj_id is not None else None):
            rows.add(line, f"interface already ends link '{holder[1]}'", f"{side}_interface")
            ok = False
        elif iid in seen_ends:
            rows.add(line, f"interface also ends the link of row {seen_ends[iid]}", f"{side}_interface")
            ok = False
        else:
            seen_ends[iid] = line
    return ok


def _write(*, session: Session, actor: Actor, res: Resource, creates: list, updates: list) -> ImportReport:
    model, changes = res.model, []
    if creates:
        payload = [row for _, row in creates]
        self_ref = next((r for r in res.refs if r.model is res.model), None)
        if self_ref is not None and res.key:
            ids_by_key = Context(session).key_map(model)
            for row in payload:
                if row.get(self_ref.target) is None and row.get("_parent_key"):
                    row[self_ref.target] = ids_by_key[row["_parent_key"]]
            for row in payload:
                row.pop("_parent_key", None)
        ids = insert_rows(session, model.__table__, payload)
        for obj_id, row in zip(ids, payload):
            changes.append(audit.Change("create", model.__tablename__, obj_id, _repr(res, row),
                                        after=_public({"id": obj_id, **row})))
    if updates:
        ids = [row["id"] for _, row in updates]
        before = {o.id: audit.snapshot(o) for o in session.scalars(select(model).where(model.id.in_(ids)))}
        session.execute(update(model), [row for _, row in updates])
        for _, row in updates:
            changes.append(audit.Change("update", model.__tablename__, row["id"], _repr(res, row),
                                        before=before[row["id"]], after=_public(row)))
    audit.record_many(session=session, actor=actor, changes=changes)
    session.expire_all()
    return ImportReport(object_type=res.name, created=len(creates), updated=len(updates))


def _repr(res: Resource, row: dict[str, Any]) -> str:
    for attr in ("slug", "code", "name"):
        if row.get(attr):
            return str(row[attr])
    return f"{res.label} {row.get('id', '')}".strip()


def export_objects(*, session: Session, actor: Actor, res: Resource, fmt: str) -> bytes:
    """Every visible object in the import format (natural keys for related rows): export, edit, import back."""
    columns = _export_columns(res)
    names: dict[str, dict[int, str]] = {}
    for ref in res.refs:
        if ref.model is AdminUnit:
            names[ref.column] = dict(session.execute(select(AdminUnit.id, AdminUnit.code)).all())
        else:
            names[ref.column] = {v: k for k, v in Context(session).key_map(ref.model).items()}
    iface: dict[int, tuple[str, str]] = {}
    if res.model is Link:
        iface = {i: (d, n) for i, d, n in session.execute(
            select(Interface.id, Device.name, Interface.name).join(Device, Device.id == Interface.device_id))}
    stmt = visible(actor=actor, res=res, stmt=select(res.model)).order_by(res.model.id)

    def rows():
        for obj in session.scalars(stmt.execution_options(yield_per=2000)):
            row = {c: audit.jsonable(getattr(obj, c, None)) for c in columns if hasattr(obj, c)}
            for ref in res.refs:
                row[ref.column] = names[ref.column].get(getattr(obj, ref.target))
            if res.model is Link:
                row["a_device"], row["a_interface"] = iface[obj.a_interface_id]
                row["b_device"], row["b_interface"] = iface[obj.b_interface_id]
            if res.model is Device and not obj.operator_override:
                row["operator"] = None
            if res.model is Link and not obj.operator_override:
                row["operator"] = None
            yield row

    return write_rows(rows(), columns, fmt)


# Responsibility
def recompute_responsibility(*, session: Session, actor: Actor, on: date | None = None) -> int:
    """Re-derive the operator of every device, link and subscription not overridden; returns how many changed."""
    ctx = Context(session, on)
    changes = []
    for model in (Device, Link):
        rows = session.execute(select(model.id, model.tier, model.province_id, model.operator_id)
                               .where(model.operator_override.is_(False))).all()
        new = [{"id": r.id, "operator_id": ctx.responsible_operator(r.tier, r.province_id)} for r in rows]
        moved = [n for n, r in zip(new, rows) if n["operator_id"] != r.operator_id]
        if moved:
            session.execute(update(model), moved)
            changes += [audit.Change("update", model.__tablename__, m["id"], note="responsibility re-derived",
                                     after={"operator_id": m["operator_id"]}) for m in moved]
    sub_rows = session.execute(select(Subscription.id, Subscription.operator_id, Link.operator_id.label("lop"))
                               .join(Link, Link.id == Subscription.access_link_id)).all()
    moved = [{"id": r.id, "operator_id": r.lop} for r in sub_rows if r.lop != r.operator_id]
    if moved:
        session.execute(update(Subscription), moved)
        changes += [audit.Change("update", "subscriptions", m["id"], note="responsibility re-derived",
                                 after={"operator_id": m["operator_id"]}) for m in moved]
    audit.record_many(session=session, actor=actor, changes=changes)
    session.expire_all()
    return len(changes)



def snmp_secret(*, session: Session, credential_id: int) -> dict[str, Any]:
    """A credential in clear for the poller's own use; never exposed through the API and never logged."""
    from tslcd.security.secrets import unseal

    cred = session.get(SnmpCredential, credential_id)
    if cred is None:
        raise NotFound(f"no SNMP credential {credential_id}")
    return {"version": cred.version.value, "username": cred.username, "auth_protocol": cred.auth_protocol,
            "priv_protocol": cred.priv_protocol, **unseal(cred.secret)}
