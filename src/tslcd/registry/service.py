"""Registry rules: one write path for every entry point, the permission gate, derived fields, uniqueness,
dependents, all-or-nothing bulk import and export.

Every write — REST create/patch/delete, an import row, a CLI command — goes the same way:
1. the audit lock is taken first (one lock order for every writer, so imports and API writes never deadlock);
2. the row as it will be is planned from the input merged over the row as stored (`_plan`): references are
   resolved within what the actor may see, derived fields (province, responsible operator) are computed, column
   bounds are checked, and the permission gate judges the row before and after;
3. uniqueness, the write, the audit record, then the consequences (`_after_write`: agreements move
   responsibility, a link's operator carries over to its subscriptions).
"""

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import BigInteger, Integer, Select, SmallInteger, String, and_, func, or_, select, update
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import Session

from tslcd.core import search
from tslcd.core.bulk import Columns, ImportReport, Rows, iter_rows, read_rows
from tslcd.core.database import insert_rows, is_postgres
from tslcd.core.errors import Conflict, DomainValidationError, NotFound, PermissionDenied
from tslcd.core.inputs import ID_MAX, INT64_MAX, INT64_MIN, clean_text
from tslcd.core.listing import paginate
from tslcd.registry.codes import check_agency_code
from tslcd.registry.context import Context
from tslcd.registry.models import AdminUnit, Agreement, Device, Link, SnmpCredential, Subscription
from tslcd.registry.permissions import check_write, partner_responsibility, visible, visible_ids
from tslcd.registry.resources import RESOURCES, FieldError, Ref, Resource, key_filters, resource_of
from tslcd.security import audit
from tslcd.security.actor import Actor
from tslcd.security.secrets import secret_columns
from tslcd.security.models import Role

__all__ = ["resource", "visible", "visible_ids", "list_objects", "get_object", "create_object", "update_object",
           "delete_object", "import_objects", "export_objects", "recompute_responsibility", "snmp_secret"]

IMPORT_BATCH = 2000  # rows validated and written together; an import's memory is bounded by this, not the file
INT32 = (-(2**31), 2**31 - 1)


def resource(name: str) -> Resource:
    try:
        return RESOURCES[name]
    except KeyError:
        raise NotFound(f"no object type '{name}' (one of: {', '.join(RESOURCES)})") from None


# Reads
def list_objects(*, session: Session, actor: Actor, res: Resource, filters: dict[str, list[Any]] | None = None,
                 q: str | None = None, as_of: date | str | None = None, limit: int = 50, offset: int = 0):
    """One page of visible objects matching the filters.

    Objects with validity dates are those in force today unless `as_of` names a date, or "all" for history.
    """
    model = res.model
    stmt = visible(actor=actor, res=res, stmt=select(model))
    ctx = Context(session, actor=actor)
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
        try:
            q = clean_text(q)
        except ValueError as exc:
            raise DomainValidationError(f"q {exc}", errors=[{"loc": ["query", "q"], "msg": str(exc)}]) from None
        if "search_key" not in model.__table__.c:
            raise DomainValidationError(f"{res.label}s cannot be searched; filter them instead",
                                        errors=[{"loc": ["query", "q"], "msg": "not searchable"}])
        condition = search.matching(model.__table__, q, postgres=is_postgres(session))
        if condition is not None:
            stmt = stmt.where(condition)
    stmt = _in_force(res, stmt, as_of, session)
    return paginate(session=session, stmt=stmt, limit=limit, offset=offset, order_by=model.id)


def _in_force(res: Resource, stmt: Select, as_of: date | str | None, session: Session | None = None) -> Select:
    model = res.model
    dated = hasattr(model, "valid_from") and hasattr(model, "valid_to")
    if as_of == "all":
        return stmt
    if isinstance(as_of, str):
        try:
            as_of = date.fromisoformat(as_of)
        except ValueError:
            raise DomainValidationError(f"as_of '{as_of}' is neither a date (YYYY-MM-DD) nor 'all'",
                                        errors=[{"loc": ["query", "as_of"], "msg": "a date or 'all'"}]) from None
    if not dated:
        if as_of is not None:
            raise DomainValidationError(f"{res.label}s have no validity dates; as_of does not apply",
                                        errors=[{"loc": ["query", "as_of"], "msg": "not applicable"}])
        return stmt
    on = as_of or date.today()
    # Rows out of force are few (history) and found through the date indexes; excluding them keeps a page of a
    # 100,000-row directory as cheap as the plain table.
    out_of_force = select(model.id).where(or_(model.valid_from > on, model.valid_to < on))
    if session is not None and not session.scalar(select(out_of_force.exists())):
        return stmt  # nothing is out of force: the list is the table (and its count the table's)
    return stmt.where(model.id.not_in(out_of_force))


def _typed(param: str, column: Any, value: Any) -> Any:
    def bad(msg: str = "") -> DomainValidationError:
        return DomainValidationError(f"{param}: '{value}' is not a valid value{msg}",
                                     errors=[{"loc": ["query", param], "msg": f"invalid value '{value}'{msg}"}])

    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    try:
        if python_type is int:
            number = int(value)
            low, high = INT32 if isinstance(column.type, Integer) and not isinstance(
                column.type, (BigInteger, SmallInteger)) else (INT64_MIN, INT64_MAX)
            if not low <= number <= high:
                raise bad(f" (outside {low}..{high})")
            return number
        if python_type is date:
            return date.fromisoformat(str(value))
        if python_type is bool:
            return {"true": True, "false": False, "1": True, "0": False}[str(value).lower()]
        return python_type(value)
    except (ValueError, TypeError, KeyError):
        raise bad() from None


def _natural_key_id(ctx: Context, ref: Ref, key: str) -> int:
    found = ctx.ref_id(ref, key)
    if found is None:
        raise DomainValidationError(f"no {ref.column.replace('_', ' ')} '{key}'",
                                    errors=[{"loc": ["query", ref.column], "msg": f"no {ref.column} '{key}'"}])
    return found


def get_object(*, session: Session, actor: Actor, res: Resource, obj_id: int):
    obj = session.scalar(visible(actor=actor, res=res, stmt=select(res.model).where(res.model.id == obj_id)))
    if obj is None:
        raise NotFound(f"no {res.label} {obj_id}")
    return obj


# The write path
def _columns(res: Resource) -> set[str]:
    return {c.key for c in res.model.__table__.columns if c.key != "search_key"}


def _stored(res: Resource, obj: Any) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in _columns(res)}


def _label_of(model: type) -> str:
    res = resource_of(model)
    return res.label if res is not None else model.__tablename__


def _check_refs(ctx: Context, actor: Actor, res: Resource, values: dict[str, Any]) -> None:
    """Every id a row names exists and, for objects the actor sees only in part, is one it may see."""
    for ref in res.refs:
        target = values.get(ref.target)
        if target is None:
            continue
        if not ctx.exists(ref.model, target) or (ref.scoped and not ctx.may_see(ref.model, target)):
            raise FieldError(ref.target, f"no {_label_of(ref.model)} {target}")


@lru_cache(maxsize=None)
def _bounds(model: type) -> dict[str, tuple[bool, int | None, tuple[int, int] | None]]:
    """Per column: (nullable, longest text, integer range), read once from the table."""
    out = {}
    for column in model.__table__.columns:
        if column.key == "id":
            continue
        length = column.type.length if isinstance(column.type, String) else None
        width = None
        if isinstance(column.type, Integer):
            width = INT32 if not isinstance(column.type, (BigInteger, SmallInteger)) else (INT64_MIN, INT64_MAX)
        out[column.key] = (column.nullable or column.primary_key, length, width)
    return out


def _check_bounds(res: Resource, values: dict[str, Any]) -> None:
    """What the columns can hold: text length, integer width, NOT NULL."""
    bounds = _bounds(res.model)
    for key, value in values.items():
        bound = bounds.get(key)
        if bound is None:
            continue
        nullable, length, width = bound
        if value is None:
            if not nullable:
                raise FieldError(key, "may not be empty")
        elif length is not None and value.__class__ is str and len(value) > length:
            raise FieldError(key, f"at most {length} characters ({len(value)} given)")
        elif width is not None and value.__class__ is int and not width[0] <= value <= width[1]:
            raise FieldError(key, f"{value} is outside {width[0]}..{width[1]}")


def _plan(ctx: Context, actor: Actor, res: Resource, *, changes: dict[str, Any], current: dict[str, Any] | None,
          verb: str) -> dict[str, Any]:
    """The row as it will be: the input merged over the stored row, derived, bounded and allowed.

    Raises FieldError (a field is wrong) or PermissionDenied (the actor may not write this row).
    """
    has_operator = "operator_override" in _columns(res)
    given_operator = None
    if has_operator and "operator_id" in changes:
        if actor.role == Role.partner:
            given_operator = changes.pop("operator_id")
            if current is not None:
                partner_responsibility(actor, res, given_operator, current.get("operator_id"))
        elif current is not None:
            changes["operator_override"] = changes["operator_id"] is not None
    values = {**(current or {}), **changes}
    if has_operator and current is None and actor.role == Role.partner:
        values["operator_id"] = None  # derived from the agreements below
    _check_refs(ctx, actor, res, values)
    if res.prepare:
        res.prepare(ctx, values)
    if current is None and given_operator is not None:
        partner_responsibility(actor, res, given_operator, values.get("operator_id"))
    if res.model is Link:
        ctx.check_link_ends(values, values.get("id"))
    _check_bounds(res, values)
    check_write(ctx.session, actor, res, verb=verb, before=current, after=values)
    return values


def _field_error(exc: FieldError) -> DomainValidationError:
    return DomainValidationError(exc.msg, errors=[{"loc": [exc.column], "msg": exc.msg}])


def _public(model: type, values: dict[str, Any]) -> dict[str, Any]:
    hidden = secret_columns(model) | {"search_key", "created_at", "updated_at"}
    return {k: audit.jsonable(v) for k, v in values.items() if k not in hidden}


def create_object(*, session: Session, actor: Actor, res: Resource, obj_in: BaseModel):
    """Create one object after its cross-object rules and the actor's rights are checked."""
    audit.lock(session)
    ctx = Context(session, actor=actor)
    try:
        values = _plan(ctx, actor, res, changes=obj_in.model_dump(), current=None, verb="create")
    except FieldError as exc:
        raise _field_error(exc) from None
    _check_unique(session, res, values)
    obj = res.model(**{k: v for k, v in values.items() if k in _columns(res)})
    session.add(obj)
    session.flush()
    audit.record(session=session, actor=actor, action="create", obj=obj)
    _after_write(session, actor, res, [obj.id])
    return obj


def update_object(*, session: Session, actor: Actor, res: Resource, obj_id: int, obj_in: BaseModel):
    """Change one object; the row must be the actor's to change both as stored and as it will be."""
    audit.lock(session)
    obj = get_object(session=session, actor=actor, res=res, obj_id=obj_id)
    ctx = Context(session, actor=actor)
    current = _stored(res, obj)
    try:
        values = _plan(ctx, actor, res, changes=obj_in.model_dump(exclude_unset=True), current=current,
                       verb="change")
    except FieldError as exc:
        raise _field_error(exc) from None
    _check_unique(session, res, values, own_id=obj.id)
    if all(values.get(k) == current.get(k) for k in _columns(res)):
        return obj  # nothing changes: nothing written, nothing audited
    before = audit.snapshot(obj)
    for key, value in values.items():
        if key in _columns(res) and key != "id":
            setattr(obj, key, value)
    session.flush()
    audit.record(session=session, actor=actor, action="update", obj=obj, before=before)
    _after_write(session, actor, res, [obj.id])
    return obj


def delete_object(*, session: Session, actor: Actor, res: Resource, obj_id: int) -> None:
    """Delete an object no other object uses; otherwise 409 listing what uses it."""
    audit.lock(session)
    obj = get_object(session=session, actor=actor, res=res, obj_id=obj_id)
    check_write(session, actor, res, verb="delete", before=_stored(res, obj), after=None)
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
    _after_write(session, actor, res, [obj.id])


def _check_unique(session: Session, res: Resource, values: dict[str, Any], own_id: int | None = None) -> None:
    key = res.key_of(values)
    if key is None:
        return
    stmt = select(res.model.id).where(and_(*[
        getattr(res.model, k).is_(None) if v is None else getattr(res.model, k) == v for k, v in zip(res.key, key)]))
    found = session.scalar(stmt)
    if found is not None and found != own_id:
        shown = ", ".join(f"{k}={v}" for k, v in zip(res.key, key))
        raise Conflict(f"a {res.label} with {shown} already exists (id {found})",
                       errors=[{"loc": [res.key[-1]], "msg": "already exists"}])


def _after_write(session: Session, actor: Actor, res: Resource, ids: list[int]) -> None:
    """The consequences of a write, for every entry point: agreements move responsibility; a link's operator
    carries over to the subscriptions on it."""
    if not ids:
        return
    if res.model is Agreement:
        recompute_responsibility(session=session, actor=actor)
    elif res.model is Link:
        _sync_subscriptions(session, actor, ids)


def _sync_subscriptions(session: Session, actor: Actor, link_ids: list[int]) -> None:
    audit.lock(session)  # already held by the write that called it; taken again here for callers that are not
    changes = []
    for chunk in range(0, len(link_ids), 5000):
        stale = session.execute(
            select(Subscription.id, Subscription.operator_id, Link.operator_id.label("lop"))
            .join(Link, Link.id == Subscription.access_link_id)
            .where(Subscription.access_link_id.in_(link_ids[chunk:chunk + 5000]),
                   Subscription.operator_id.is_distinct_from(Link.operator_id))).all()
        if stale:
            session.execute(update(Subscription), [{"id": r.id, "operator_id": r.lop} for r in stale])
            changes += [audit.Change("update", "subscriptions", r.id, f"subscription {r.id}",
                                     before={"operator_id": r.operator_id}, after={"operator_id": r.lop},
                                     note="operator follows the access link") for r in stale]
    if changes:
        audit.record_many(session=session, actor=actor, changes=changes)
        session.expire_all()


# Import
LINK_ENDS = ("a_device", "a_interface", "b_device", "b_interface")


def import_columns(res: Resource) -> Columns:
    """The CSV columns of an object type: what an export writes, plus raw ids; required ones for new rows."""
    ref_targets = {r.target: r for r in res.refs}
    known = {"id", *export_columns(res), *res.update.model_fields, *ref_targets}
    if res.model is Link:
        known |= {"a_interface_id", "b_interface_id"}
    required = []
    for name, info in res.create.model_fields.items():
        if not info.is_required():
            continue
        if name in ref_targets:
            required.append((ref_targets[name].column, name))
        elif res.model is Link and name in ("a_interface_id", "b_interface_id"):
            required.append((name.removesuffix("_id"), name))
        else:
            required.append((name,))
    return Columns(known=frozenset(known), required=tuple(required))


def export_columns(res: Resource) -> list[str]:
    ref_targets = {r.target for r in res.refs}
    plain = [f for f in res.create.model_fields if f not in ref_targets and f not in ("a_interface_id",
                                                                                      "b_interface_id")]
    if res.model is Link:
        plain += list(LINK_ENDS)
    return ["id", *plain, *[r.column for r in res.refs]]


DataSource = bytes | str | Callable[[], Iterable[bytes]]


def import_objects(*, session: Session, actor: Actor, res: Resource, data: DataSource, fmt: str,
                   encoding: str | None = None, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Validate every row, then write all of them or none; a row with an `id` updates that object.

    Rows are read and written in batches of IMPORT_BATCH inside a savepoint: the first bad row stops the writing
    (the rest is still checked so every bad row is reported) and the savepoint is rolled back.
    `data` is the file's bytes or text, or a callable giving its chunks afresh (a file read twice when rows may
    name a parent further down).
    """
    audit.lock(session)  # one lock order: the audit lock before any row is touched
    importer = _Importer(session, actor, res, fmt, encoding, progress)
    savepoint = session.begin_nested()
    try:
        report = importer.run(data)
    except BaseException:
        savepoint.rollback()
        session.expire_all()
        raise
    savepoint.commit()
    return report


class _Importer:
    def __init__(self, session: Session, actor: Actor, res: Resource, fmt: str, encoding: str | None,
                 progress: Callable[[int], None] | None) -> None:
        self.session, self.actor, self.res, self.fmt, self.encoding = session, actor, res, fmt, encoding
        self.progress = progress
        self.ctx = Context(session, actor=actor)
        self.ctx.preload_for(res.model.__tablename__)
        self.rows = Rows(res.name)
        self.report = ImportReport(object_type=res.name)
        self.columns = _columns(res)
        self.spec = import_columns(res)
        self.seen: dict[tuple, int] = {}
        self.seen_ends: dict[int, int] = {}
        self.existing_keys = _existing_keys(session, res)
        self.self_ref = next((r for r in res.refs if r.model is res.model), None)
        self.in_file: set[str] = set()
        self.deferred: list[tuple[int, dict[str, Any], str]] = []  # (line, row, parent key) awaiting the parent
        self.pending_creates: list[tuple[int, dict[str, Any]]] = []
        self.pending_updates: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        self.changed: list[int] = []  # ids written, for the consequences (_after_write)

    def _read(self, data: DataSource) -> Iterator[tuple[int, dict[str, Any]]]:
        source = data() if callable(data) else data
        return read_rows(source, self.fmt, encoding=self.encoding, columns=self.spec, object_type=self.res.name)

    def run(self, data: DataSource) -> ImportReport:
        if self.self_ref is not None:
            key = _natural_column(self.res)
            self.in_file = {_same_file_key(self.res, raw[key]) for _, raw in self._read(data)
                            if raw.get(key) and raw.get("id") is None}
        batch: list[tuple[int, dict[str, Any]]] = []
        done = 0
        for line, raw in self._read(data):
            batch.append((line, raw))
            if len(batch) >= IMPORT_BATCH:
                self._batch(batch)
                done += len(batch)
                batch = []
                if self.progress:
                    self.progress(done)
        if batch:
            self._batch(batch)
            done += len(batch)
        self._write_deferred()
        self.rows.raise_if_any()
        if self.progress:
            self.progress(done)
        _after_write(self.session, self.actor, self.res, self.changed)
        return self.report

    # One batch of rows: validated against the stored rows (fetched for the batch at once), then written
    def _batch(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        ids = {}
        for line, raw in batch:
            if raw.get("id") is not None:
                try:
                    ids[line] = int(raw["id"])
                    if not 1 <= ids[line] <= ID_MAX:
                        raise ValueError
                except (TypeError, ValueError):
                    self.rows.add(line, f"id '{raw['id']}' is not a valid id", "id")
        current = self._current(set(ids.values()))
        for line, raw in batch:
            if line in ids or raw.get("id") is None:
                self._row(line, raw, ids.get(line), current)
        if self.rows.errors:  # nothing more will be written: keep only what finds more bad rows
            self.pending_creates.clear()
            self.pending_updates.clear()
            self.deferred.clear()
        else:
            self._flush()

    def _current(self, ids: set[int]) -> dict[int, Any]:
        """The stored rows with these ids that the actor may see (others answer as missing)."""
        if not ids:
            return {}
        model, found = self.res.model, {}
        ordered = sorted(ids)
        for i in range(0, len(ordered), 5000):
            stmt = visible(actor=self.actor, res=self.res, stmt=select(model).where(model.id.in_(ordered[i:i + 5000])))
            found.update({obj.id: obj for obj in self.session.scalars(stmt)})
        return found

    def _row(self, line: int, raw: dict[str, Any], obj_id: int | None, current: dict[int, Any]) -> None:
        res, rows = self.res, self.rows
        raw = {k: v for k, v in raw.items() if k != "id"}
        stored = None
        if obj_id is not None:
            obj = current.get(obj_id)
            if obj is None:
                rows.add(line, f"no {res.label} with id {obj_id} to update", "id")
                return
            stored = _stored(res, obj)
        _fill_empty(res, raw)
        parent_key: str | None = None
        try:
            values, parent_key = self._resolve(raw)
        except FieldError as exc:
            rows.add(line, exc.msg, exc.column)
            return
        try:
            if stored is None:
                changes = res.create.model_validate(values).model_dump()
            else:
                changes = self._update_changes(values, stored)
        except ValidationError as exc:
            rows.add_validation(line, exc)
            return
        except FieldError as exc:
            rows.add(line, exc.msg, exc.column)
            return
        if parent_key is not None:
            self.deferred.append((line, changes, parent_key))
            return
        self._accept(line, changes, stored, obj_id)

    def _update_changes(self, values: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
        """An update's fields; a column the update cannot change (a natural key, a link's ends) may be given only
        with its stored value, so an export can be imported back as it is."""
        res = self.res
        for key, value in values.items():
            if key in res.update.model_fields or key not in stored:
                continue
            if not _same_value(value, stored[key]):
                raise FieldError(key, f"{key} cannot be changed by an update (stored: {_plain(stored[key])})")
        changes = res.update.model_validate({k: v for k, v in values.items() if k in res.update.model_fields})
        return changes.model_dump(exclude_unset=True)

    def _accept(self, line: int, changes: dict[str, Any], stored: dict[str, Any] | None, obj_id: int | None) -> None:
        res, rows = self.res, self.rows
        try:
            values = _plan(self.ctx, self.actor, res, changes=changes, current=stored,
                           verb="import" if stored is None else "change")
        except FieldError as exc:
            rows.add(line, exc.msg, exc.column)
            return
        except PermissionDenied as exc:
            rows.add(line, exc.detail)
            return
        key = res.key_of(values)
        if key is not None:
            if key in self.seen:
                rows.add(line, f"same {', '.join(res.key)} as row {self.seen[key]}", res.key[-1])
                return
            self.seen[key] = line
            holder = self.existing_keys.get(key)
            if holder is not None and holder != obj_id:
                rows.add(line, f"a {res.label} with {', '.join(res.key)} {'/'.join(map(str, key))} already "
                         f"exists (id {holder}); give its id to update it", res.key[-1])
                return
        if res.model is Link and not self._link_ends_free(line, values, obj_id):
            return
        row = {k: v for k, v in values.items() if k in self.columns}
        if stored is not None:
            if all(row.get(k) == stored.get(k) for k in self.columns):
                self.report.unchanged += 1
                return
            self.pending_updates.append((line, row, stored))
        else:
            self.pending_creates.append((line, row))

    def _resolve(self, raw: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Natural-key columns turned into ids; a parent named further down the same file is deferred."""
        res, ctx = self.res, self.ctx
        values = {k: v for k, v in raw.items() if k not in {r.column for r in res.refs} and k not in LINK_ENDS}
        parent_key = None
        for ref in res.refs:
            if ref.column not in raw:
                continue
            key = raw[ref.column]
            if key is None:
                values.setdefault(ref.target, None)
                continue
            found = ctx.ref_id(ref, str(key))
            if found is None and ref is self.self_ref and _same_file_key(res, key) in self.in_file:
                parent_key = str(key) if res.model is AdminUnit else _same_file_key(res, key)
                values[ref.target] = None
                continue
            if found is None:
                raise FieldError(ref.column, f"no {ref.column.replace('_', ' ')} '{key}'")
            values[ref.target] = found
        if res.model is Link:
            for side in ("a", "b"):
                device, name = raw.get(f"{side}_device"), raw.get(f"{side}_interface")
                if device is None and name is None:
                    continue
                if device is None or name is None:
                    raise FieldError(f"{side}_interface", f"give both {side}_device and {side}_interface")
                iid = ctx.interface_ref(str(device), str(name))
                if iid is None:
                    raise FieldError(f"{side}_interface", f"device '{device}' has no interface '{name}'")
                values[f"{side}_interface_id"] = iid
        return values, parent_key

    def _link_ends_free(self, line: int, values: dict[str, Any], obj_id: int | None) -> bool:
        ok = True
        ends = self.ctx.link_ends()
        for side in ("a", "b"):
            iid = values[f"{side}_interface_id"]
            holder = ends.get(iid)
            if holder is not None and holder[0] != obj_id:
                self.rows.add(line, f"interface already ends link '{holder[1]}'", f"{side}_interface")
                ok = False
            elif iid in self.seen_ends:
                self.rows.add(line, f"interface also ends the link of row {self.seen_ends[iid]}", f"{side}_interface")
                ok = False
            else:
                self.seen_ends[iid] = line
        return ok

    def _flush(self) -> None:
        creates, updates = self.pending_creates, self.pending_updates
        self.pending_creates, self.pending_updates = [], []
        if not creates and not updates:
            return
        res, model, changes = self.res, self.res.model, []
        if creates:
            payload = [row for _, row in creates]
            ids = insert_rows(self.session, model.__table__, payload)
            for obj_id, row in zip(ids, payload):
                changes.append(audit.Change("create", model.__tablename__, obj_id, _repr(res, row),
                                            after=_public(model, {"id": obj_id, **row})))
                self.ctx.created(res, obj_id, row)
            self.changed += ids
        if updates:
            payload = [row for _, row, _ in updates]
            search.fill(model.__tablename__, payload)
            self.session.execute(update(model), payload)
            search.sync(self.session.connection(), model.__tablename__, payload)
            for _, row, stored in updates:
                changes.append(audit.Change("update", model.__tablename__, row["id"], _repr(res, row),
                                            before=_public(model, stored), after=_public(model, row)))
            self.changed += [row["id"] for row in payload]
        audit.record_many(session=self.session, actor=self.actor, changes=changes)
        self.session.expire_all()
        self.report.created += len(creates)
        self.report.updated += len(updates)

    def _write_deferred(self) -> None:
        """Rows that named a parent further down, in the order their parents were written."""
        pending = self.deferred
        while pending and not self.rows.errors:
            target = self.self_ref.target
            ready, waiting = [], []
            for line, changes, parent_key in pending:
                parent = self.ctx.ref_id(self.self_ref, parent_key)
                (ready if parent is not None else waiting).append((line, {**changes, target: parent}, parent_key))
            if not ready:
                break
            for line, changes, _ in ready:
                self._accept(line, changes, None, None)
            if not self.rows.errors:
                self._flush()
            pending = waiting
        for line, _, parent_key in pending:
            self.rows.add(line, f"parent '{parent_key}' is not written before it: the rows form a cycle or name a "
                          "row that has an error", self.self_ref.target if self.self_ref else None)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def _same_value(given: Any, stored: Any) -> bool:
    if given is None or stored is None:
        return given is None and stored is None
    if isinstance(stored, int) and not isinstance(stored, bool):
        try:
            return int(given) == stored
        except (TypeError, ValueError):
            return False
    return str(given).strip() == str(_plain(stored))


def _fill_empty(res: Resource, raw: dict[str, Any]) -> None:
    """An empty cell (or JSON null): NULL where the column allows it, empty text for text columns, otherwise the
    default (a new row) or the stored value (an update)."""
    table = res.model.__table__
    refs = {r.column: r.target for r in res.refs}
    for key in [k for k, v in raw.items() if v is None]:
        if key in LINK_ENDS:
            del raw[key]
            continue
        column = table.c.get(refs.get(key, key))
        if column is not None and column.nullable:
            continue
        if column is not None and isinstance(column.type, String) and key not in refs:
            raw[key] = ""
        else:
            del raw[key]


def _natural_column(res: Resource) -> str:
    """The column by which rows of this type are named in a file (its natural key)."""
    from tslcd.registry.context import NATURAL_KEYS

    return "code" if res.model is AdminUnit else NATURAL_KEYS[res.model].key


def _same_file_key(res: Resource, key: Any) -> str:
    """A natural key as stored, so that a parent named in another spelling still matches (agency codes; a unit's
    code, whatever date follows it)."""
    if res.model is AdminUnit:
        return str(key).partition("@")[0]
    if res.name == "agencies":
        try:
            return check_agency_code(str(key))
        except ValueError:
            return str(key)
    return str(key)


def _existing_keys(session: Session, res: Resource) -> dict[tuple, int]:
    if not res.key:
        return {}
    cols = [getattr(res.model, k) for k in res.key]
    return {tuple(r[:-1]): r[-1] for r in session.execute(select(*cols, res.model.id))}


def _repr(res: Resource, row: dict[str, Any]) -> str:
    for attr in ("slug", "code", "name"):
        if row.get(attr):
            return str(row[attr])
    return f"{res.label} {row.get('id', '')}".strip()


# Export
def export_objects(*, session: Session, actor: Actor, res: Resource, fmt: str) -> bytes:
    """Every visible object in the import format (natural keys for related rows): export, edit, import back."""
    return b"".join(iter_export(session=session, actor=actor, res=res, fmt=fmt))


def iter_export(*, session: Session, actor: Actor, res: Resource, fmt: str) -> Iterator[bytes]:
    """The export in pieces, read in batches (memory bounded by the batch, not the table)."""
    columns = export_columns(res)
    model = res.model
    ctx = Context(session, actor=actor)
    hidden = secret_columns(model)
    plain = [c for c in columns if c in _columns(res) and c not in hidden]
    stmt = visible(actor=actor, res=res, stmt=select(*[getattr(model, c) for c in plain], *[
        getattr(model, r.target) for r in res.refs])).order_by(model.id)
    if model is Link:
        stmt = stmt.add_columns(model.a_interface_id, model.b_interface_id, model.operator_override)
    elif "operator_override" in _columns(res):
        stmt = stmt.add_columns(model.operator_override)
    names = {ref.column: ctx.ref_names(ref) for ref in res.refs}
    interfaces = ctx.interface_names() if model is Link else {}

    def rows() -> Iterator[dict[str, Any]]:
        for r in session.execute(stmt.execution_options(yield_per=2000)):
            values = list(r)
            row = {c: audit.jsonable(v) for c, v in zip(plain, values)}
            for i, ref in enumerate(res.refs):
                target = values[len(plain) + i]
                row[ref.column] = names[ref.column].get(target) if target is not None else None
            extra = values[len(plain) + len(res.refs):]
            if model is Link:
                row["a_device"], row["a_interface"] = interfaces[extra[0]]
                row["b_device"], row["b_interface"] = interfaces[extra[1]]
            if "operator_override" in _columns(res) and not extra[-1]:
                row["operator"] = None  # derived from the agreements, not stated
            yield row

    return iter_rows(rows(), columns, fmt)


# Responsibility
def recompute_responsibility(*, session: Session, actor: Actor, on: date | None = None) -> int:
    """Re-derive the operator of every device, link and subscription not overridden; returns how many changed."""
    audit.lock(session)
    ctx = Context(session, on)
    changes = []
    for model in (Device, Link):
        rows = session.execute(select(model.id, model.tier, model.province_id, model.operator_id)
                               .where(model.operator_override.is_(False))).all()
        new = [{"id": r.id, "operator_id": ctx.responsible_operator(r.tier, r.province_id)} for r in rows]
        moved = [(n, r) for n, r in zip(new, rows) if n["operator_id"] != r.operator_id]
        if moved:
            session.execute(update(model), [n for n, _ in moved])
            changes += [audit.Change("update", model.__tablename__, n["id"], note="responsibility re-derived",
                                     before={"operator_id": r.operator_id}, after={"operator_id": n["operator_id"]})
                        for n, r in moved]
    sub_rows = session.execute(select(Subscription.id, Subscription.operator_id, Link.operator_id.label("lop"))
                               .join(Link, Link.id == Subscription.access_link_id)).all()
    moved_subs = [r for r in sub_rows if r.lop != r.operator_id]
    if moved_subs:
        session.execute(update(Subscription), [{"id": r.id, "operator_id": r.lop} for r in moved_subs])
        changes += [audit.Change("update", "subscriptions", r.id, note="responsibility re-derived",
                                 before={"operator_id": r.operator_id}, after={"operator_id": r.lop})
                    for r in moved_subs]
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
