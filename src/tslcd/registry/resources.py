"""What differs between registry object types: schemas, keys, references, derived fields, scope, dependents.

The generic rules that use these (list, create, update, delete, import, export) are in service.py.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, exists, or_, select

from tslcd.registry import schemas as s
from tslcd.registry.context import Context
from tslcd.registry.models import (AdminUnit, Agency, Agreement, Device, Interface, Link, Operator, Service, Site,
                                   SnmpCredential, Subscription)
from tslcd.security.actor import Actor
from tslcd.security.secrets import seal
from tslcd.security.models import Role, User


class FieldError(Exception):
    """A row-level fault tied to one field."""

    def __init__(self, column: str, msg: str):
        super().__init__(msg)
        self.column, self.msg = column, msg


@dataclass(frozen=True)
class Ref:
    """A CSV column naming a related row by its natural key."""

    column: str
    target: str  # field of the create schema
    model: type
    scoped: bool = True  # resolves only to rows the actor may see (False: a place, such as a device's site)


@dataclass
class Resource:
    name: str  # URL segment and audit object type
    model: type
    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    label: str  # one object, in messages
    key: tuple[str, ...] = ()  # natural key fields, unique
    refs: tuple[Ref, ...] = ()
    filters: dict[str, str] = field(default_factory=dict)  # query parameter -> column
    search: tuple[str, ...] = ()
    dependents: tuple[tuple[type, str, str], ...] = ()  # (model, fk column, label)
    prepare: Callable[[Context, dict[str, Any]], None] | None = None
    scope: Callable[[Select, Actor], Select] | None = None
    partner_edits: bool = False  # partners edit rows whose operator_id is theirs
    reference_data: bool = True  # readable by every role

    def key_of(self, values: dict[str, Any]) -> tuple | None:
        if not self.key:
            return None
        return tuple(values.get(k) for k in self.key)


def key_filters(res: Resource) -> dict[str, Ref]:
    """Filters naming related objects by natural key (`site=hn-01`, `province=01`) beside the id filters."""
    refs = {r.column: r for r in res.refs}
    if "province_id" in res.filters:
        refs["province"] = Ref("province", "province_id", AdminUnit)
    return refs


# Derived fields
def _prepare_agency(ctx: Context, v: dict[str, Any]) -> None:
    v["province_id"] = ctx.province_of_unit(v.get("unit_id"))


def _prepare_site(ctx: Context, v: dict[str, Any]) -> None:
    v["province_id"] = ctx.province_of_unit(v.get("unit_id"))


def _prepare_device(ctx: Context, v: dict[str, Any]) -> None:
    v["province_id"] = ctx.site_province(v["site_id"])
    if v.get("operator_id") is not None and v.get("operator_override", True):
        v["operator_override"] = True
    else:
        v["operator_override"] = False
        v["operator_id"] = ctx.responsible_operator(v["tier"], v["province_id"])


def _prepare_link(ctx: Context, v: dict[str, Any]) -> None:
    """Ends resolve to devices; the link lies in its downstream (b) end's province, else in the a end's."""
    for side in ("a", "b"):
        device_id = ctx.interface_device(v[f"{side}_interface_id"])
        if device_id is None:
            raise FieldError(f"{side}_interface_id", f"no interface {v[f'{side}_interface_id']}")
        v[f"{side}_device_id"] = device_id
    if v["a_device_id"] == v["b_device_id"]:
        raise FieldError("b_interface_id", "both ends are on the same device")
    v["province_id"] = ctx.device_province(v["b_device_id"]) or ctx.device_province(v["a_device_id"])
    if v.get("operator_id") is not None and v.get("operator_override", True):
        v["operator_override"] = True
    else:
        v["operator_override"] = False
        v["operator_id"] = ctx.responsible_operator(v["tier"], v["province_id"])


def _prepare_snmp_credential(ctx: Context, v: dict[str, Any]) -> None:
    """Check what each SNMP version needs and seal the secrets; only the sealed blob is stored.

    An update that names no secret keeps the stored one (exports never carry secrets, so they import back as
    they are); one that names some replaces those and keeps the others."""
    from tslcd.security.secrets import unseal

    given = {k: v.pop(k) for k in ("community", "auth_key", "priv_key") if v.get(k)}
    for k in ("community", "auth_key", "priv_key"):
        v.pop(k, None)
    stored = unseal(v["secret"]) if v.get("secret") else {}
    secret = {**stored, **given}
    version = getattr(v["version"], "value", v["version"])
    if version in ("v1", "v2c") and "community" not in secret:
        raise FieldError("community", f"SNMP {version} needs a community")
    if version == "v3":
        if not v.get("username"):
            raise FieldError("username", "SNMPv3 needs a user name")
        if v.get("priv_protocol") and not secret.get("priv_key"):
            raise FieldError("priv_key", "a privacy protocol needs a privacy key")
        if v.get("auth_protocol") and not secret.get("auth_key"):
            raise FieldError("auth_key", "an authentication protocol needs an authentication key")
    if given or not v.get("secret"):
        v["secret"] = seal(secret)


def _prepare_subscription(ctx: Context, v: dict[str, Any]) -> None:
    link_id = v.get("access_link_id")
    v["operator_id"] = ctx.link_operator(link_id) if link_id else None


# Role scopes (reads). Admin, NOC and auditors see everything; see service.visible().
def _own_devices(actor: Actor):
    return select(Device.id).join(Site, Site.id == Device.site_id).where(Site.agency_id == actor.agency_id)


def _scope_agency(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.agency:
        return stmt.where(or_(Agency.id == actor.agency_id, Agency.parent_id == actor.agency_id))
    return stmt


def _scope_site(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.partner:
        return stmt.where(exists().where(Device.site_id == Site.id, Device.operator_id == actor.operator_id))
    return stmt.where(Site.agency_id == actor.agency_id)


def _scope_device(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.partner:
        return stmt.where(Device.operator_id == actor.operator_id)
    return stmt.where(Device.id.in_(_own_devices(actor)))


def _scope_interface(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.partner:
        return stmt.where(Interface.device_id.in_(select(Device.id).where(Device.operator_id == actor.operator_id)))
    return stmt.where(Interface.device_id.in_(_own_devices(actor)))


def _scope_link(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.partner:
        return stmt.where(Link.operator_id == actor.operator_id)
    own = _own_devices(actor)
    return stmt.where(or_(Link.a_device_id.in_(own), Link.b_device_id.in_(own)))


def _scope_subscription(stmt: Select, actor: Actor) -> Select:
    if actor.role == Role.partner:
        return stmt.where(Subscription.operator_id == actor.operator_id)
    return stmt.where(Subscription.agency_id == actor.agency_id)


def _scope_nothing(stmt: Select, actor: Actor) -> Select:
    return stmt.where(False)


STATUS_FILTERS = {"status": "status"}

RESOURCES: dict[str, Resource] = {r.name: r for r in [
    Resource("admin-units", AdminUnit, s.AdminUnitCreate, s.AdminUnitUpdate, s.AdminUnitRead, "administrative unit",
             key=("kind", "code", "valid_from"), refs=(Ref("parent", "parent_id", AdminUnit),),
             filters={"kind": "kind", "parent_id": "parent_id", "code": "code", "id": "id"},
             search=("name", "code"),
             dependents=((AdminUnit, "parent_id", "administrative units"), (Agency, "unit_id", "agencies"),
                         (Site, "unit_id", "sites"))),
    Resource("operators", Operator, s.OperatorCreate, s.OperatorUpdate, s.OperatorRead, "operator",
             key=("slug",), filters={"slug": "slug", "id": "id"}, search=("name", "slug"),
             dependents=((Agreement, "operator_id", "agreements"), (Device, "operator_id", "devices"),
                         (Link, "operator_id", "links"), (User, "operator_id", "users"))),
    Resource("agreements", Agreement, s.AgreementCreate, s.AgreementUpdate, s.AgreementRead, "agreement",
             refs=(Ref("operator", "operator_id", Operator), Ref("province", "province_id", AdminUnit)),
             filters={"operator_id": "operator_id", "tier": "tier", "province_id": "province_id", "id": "id"}),
    Resource("agencies", Agency, s.AgencyCreate, s.AgencyUpdate, s.AgencyRead, "agency",
             key=("code",), refs=(Ref("parent", "parent_id", Agency), Ref("unit", "unit_id", AdminUnit)),
             filters={"code": "code", "kind": "kind", "parent_id": "parent_id", "unit_id": "unit_id",
                      "province_id": "province_id", "id": "id", **STATUS_FILTERS},
             search=("name", "code"), prepare=_prepare_agency, scope=_scope_agency,
             dependents=((Agency, "parent_id", "agencies"), (Site, "agency_id", "sites"),
                         (Subscription, "agency_id", "subscriptions"), (User, "agency_id", "users"))),
    Resource("sites", Site, s.SiteCreate, s.SiteUpdate, s.SiteRead, "site",
             key=("slug",), refs=(Ref("unit", "unit_id", AdminUnit), Ref("agency", "agency_id", Agency)),
             filters={"slug": "slug", "kind": "kind", "unit_id": "unit_id", "province_id": "province_id",
                      "agency_id": "agency_id", "id": "id", **STATUS_FILTERS},
             search=("name", "slug"), prepare=_prepare_site, scope=_scope_site, reference_data=False,
             dependents=((Device, "site_id", "devices"),)),
    Resource("snmp-credentials", SnmpCredential, s.SnmpCredentialCreate, s.SnmpCredentialCreate,
             s.SnmpCredentialRead, "SNMP credential", key=("name",), filters={"name": "name", "id": "id"},
             prepare=_prepare_snmp_credential, scope=_scope_nothing, reference_data=False,
             dependents=((Device, "snmp_credential_id", "devices"),)),
    Resource("devices", Device, s.DeviceCreate, s.DeviceUpdate, s.DeviceRead, "device",
             key=("name",), refs=(Ref("site", "site_id", Site, scoped=False), Ref("snmp_credential", "snmp_credential_id",
                                                                     SnmpCredential),
                                  Ref("operator", "operator_id", Operator)),
             filters={"name": "name", "site_id": "site_id", "role": "role", "tier": "tier",
                      "province_id": "province_id", "operator_id": "operator_id", "id": "id", **STATUS_FILTERS},
             search=("name", "mgmt_address"), prepare=_prepare_device, scope=_scope_device,
             partner_edits=True, reference_data=False,
             dependents=((Link, "a_device_id", "links"), (Link, "b_device_id", "links"))),
    Resource("interfaces", Interface, s.InterfaceCreate, s.InterfaceUpdate, s.InterfaceRead, "interface",
             key=("device_id", "name"), refs=(Ref("device", "device_id", Device),),
             filters={"device_id": "device_id", "name": "name", "id": "id"}, search=("name", "description"),
             scope=_scope_interface, partner_edits=True, reference_data=False,
             dependents=((Link, "a_interface_id", "links"), (Link, "b_interface_id", "links"))),
    Resource("links", Link, s.LinkCreate, s.LinkUpdate, s.LinkRead, "link",
             key=("slug",), refs=(Ref("operator", "operator_id", Operator),),
             filters={"slug": "slug", "tier": "tier", "medium": "medium", "province_id": "province_id",
                      "operator_id": "operator_id", "a_device_id": "a_device_id", "b_device_id": "b_device_id",
                      "id": "id", **STATUS_FILTERS},
             search=("slug",), prepare=_prepare_link, scope=_scope_link, partner_edits=True,
             reference_data=False, dependents=((Subscription, "access_link_id", "subscriptions"),)),
    Resource("services", Service, s.ServiceCreate, s.ServiceUpdate, s.ServiceRead, "service",
             key=("code",), filters={"code": "code", "id": "id"}, search=("name", "code"),
             dependents=((Subscription, "service_id", "subscriptions"),)),
    Resource("subscriptions", Subscription, s.SubscriptionCreate, s.SubscriptionUpdate, s.SubscriptionRead,
             "subscription", key=("agency_id", "service_id", "access_link_id"),
             refs=(Ref("agency", "agency_id", Agency), Ref("service", "service_id", Service),
                   Ref("access_link", "access_link_id", Link)),
             filters={"agency_id": "agency_id", "service_id": "service_id", "access_link_id": "access_link_id",
                      "operator_id": "operator_id", "id": "id", **STATUS_FILTERS},
             prepare=_prepare_subscription, scope=_scope_subscription, reference_data=False),
]}


_BY_MODEL = {r.model: r for r in RESOURCES.values()}


def resource_of(model: type) -> Resource | None:
    """The object type declared for a model."""
    return _BY_MODEL.get(model)
