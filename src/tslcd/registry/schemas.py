"""Request and response shapes of the registry; bit rates accept '100M' and '1G'."""

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from tslcd.core.bulk import BITRATE_MAX, parse_bitrate
from tslcd.core.inputs import InputModel, Multiline
from tslcd.core.net import parse_host_port
from tslcd.registry.codes import check_agency_code
from tslcd.registry.models import (AgencyKind, DeviceRole, Medium, SiteKind, SnmpVersion, Status, Tier, UnitKind)

BitRate = Annotated[int, BeforeValidator(parse_bitrate), Field(
    gt=0, le=BITRATE_MAX, description="whole bit/s; '100M', '1G', '2.5G' accepted, fractions of a bit refused")]
Slug = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Brief(ReadModel):
    id: int
    display: str


# Administrative units
class AdminUnitRead(ReadModel):
    id: int
    code: str
    kind: UnitKind
    name: str
    short_name: str
    unit_type: str
    parent_id: int | None
    valid_from: date | None
    valid_to: date | None
    lat: float | None
    lon: float | None


class AdminUnitCreate(InputModel):
    code: str = Field(min_length=1, max_length=16)
    kind: UnitKind
    name: str = Field(min_length=1, max_length=200)
    short_name: str = ""
    unit_type: str = ""
    parent_id: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class AdminUnitUpdate(InputModel):
    name: str | None = None
    short_name: str | None = None
    unit_type: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class LinkedUnit(BaseModel):
    unit: AdminUnitRead
    is_default: bool

    @classmethod
    def of(cls, unit, is_default: bool) -> "LinkedUnit":
        return cls(unit=AdminUnitRead.model_validate(unit), is_default=is_default)


class LineageRead(BaseModel):
    unit: AdminUnitRead
    successors: list[LinkedUnit]
    predecessors: list[LinkedUnit]
    current: AdminUnitRead | None


# Operators and agreements
class OperatorCreate(InputModel):
    slug: Slug
    name: str = Field(min_length=1, max_length=200)
    short_name: str = ""


class OperatorUpdate(InputModel):
    name: str | None = None
    short_name: str | None = None


class OperatorRead(ReadModel):
    id: int
    slug: str
    name: str
    short_name: str


class AgreementCreate(InputModel):
    operator_id: int
    tier: Tier
    province_id: int | None = Field(default=None, description="empty: nationwide")
    valid_from: date
    valid_to: date | None = None
    reference: str = ""


class AgreementUpdate(InputModel):
    valid_from: date | None = None
    valid_to: date | None = None
    reference: str | None = None


class AgreementRead(ReadModel):
    id: int
    operator_id: int
    tier: Tier
    province_id: int | None
    valid_from: date
    valid_to: date | None
    reference: str


# Agencies
class AgencyCreate(InputModel):
    code: str
    name: str = Field(min_length=1, max_length=300)
    kind: AgencyKind
    parent_id: int | None = None
    unit_id: int | None = None
    email: str = ""
    status: Status = Status.active
    valid_from: date | None = None
    valid_to: date | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return check_agency_code(value)


class AgencyUpdate(InputModel):
    code: str | None = None
    name: str | None = None
    kind: AgencyKind | None = None
    parent_id: int | None = None
    unit_id: int | None = None
    email: str | None = None
    status: Status | None = None
    valid_from: date | None = None
    valid_to: date | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return None if value is None else check_agency_code(value)


class AgencyRead(ReadModel):
    id: int
    code: str
    name: str
    kind: AgencyKind
    parent_id: int | None
    unit_id: int | None
    province_id: int | None
    email: str
    status: Status
    valid_from: date | None
    valid_to: date | None


# Sites
class SiteCreate(InputModel):
    slug: Slug
    name: str = Field(min_length=1, max_length=300)
    kind: SiteKind
    unit_id: int | None = None
    agency_id: int | None = None
    status: Status = Status.active
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class SiteUpdate(InputModel):
    name: str | None = None
    kind: SiteKind | None = None
    unit_id: int | None = None
    agency_id: int | None = None
    status: Status | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class SiteRead(ReadModel):
    id: int
    slug: str
    name: str
    kind: SiteKind
    unit_id: int | None
    province_id: int | None
    agency_id: int | None
    status: Status
    lat: float | None
    lon: float | None


# SNMP credentials: secrets go in, never out
class SnmpCredentialCreate(InputModel):
    name: Slug
    version: SnmpVersion
    community: str | None = None
    username: str = ""
    auth_protocol: str = ""
    auth_key: str | None = None
    priv_protocol: str = ""
    priv_key: str | None = None


class SnmpCredentialRead(ReadModel):
    id: int
    name: str
    version: SnmpVersion
    username: str
    auth_protocol: str
    priv_protocol: str


# Devices and interfaces
def _mgmt_address(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    parse_host_port(value, 161)  # ValueError says what is wrong
    return value.strip()


MgmtAddress = Annotated[str | None, AfterValidator(_mgmt_address), Field(
    description="host, host:port, [IPv6]:port or an IPv6 address; the SNMP port defaults to 161")]


class DeviceCreate(InputModel):
    name: str = Field(min_length=1, max_length=120)
    site_id: int
    role: DeviceRole
    tier: Tier
    vendor: str = ""
    model: str = ""
    mgmt_address: MgmtAddress = None
    snmp_credential_id: int | None = None
    status: Status = Status.active
    operator_id: int | None = Field(default=None, description="set to override the operator from the agreements")


class DeviceUpdate(InputModel):
    name: str | None = None
    site_id: int | None = None
    role: DeviceRole | None = None
    tier: Tier | None = None
    vendor: str | None = None
    model: str | None = None
    mgmt_address: MgmtAddress = None
    snmp_credential_id: int | None = None
    status: Status | None = None
    operator_id: int | None = None


class DeviceRead(ReadModel):
    id: int
    name: str
    site_id: int
    role: DeviceRole
    tier: Tier
    vendor: str
    model: str
    mgmt_address: str | None
    snmp_credential_id: int | None
    status: Status
    province_id: int | None
    operator_id: int | None
    operator_override: bool


class InterfaceCreate(InputModel):
    device_id: int
    name: str = Field(min_length=1, max_length=64)
    if_index: int | None = Field(default=None, ge=1)
    speed: BitRate | None = None
    description: str = ""
    enabled: bool = True


class InterfaceUpdate(InputModel):
    name: str | None = None
    if_index: int | None = Field(default=None, ge=1)
    speed: BitRate | None = None
    description: str | None = None
    enabled: bool | None = None


class InterfaceRead(ReadModel):
    id: int
    device_id: int
    name: str
    if_index: int | None
    speed: int | None
    description: str
    enabled: bool


# Links
class LinkCreate(InputModel):
    slug: Annotated[str, Field(min_length=1, max_length=160, pattern=r"^[a-z0-9][a-z0-9._/-]*$")]
    a_interface_id: int
    b_interface_id: int
    capacity: BitRate
    medium: Medium = Medium.fibre
    tier: Tier
    status: Status = Status.active
    operator_id: int | None = Field(default=None, description="set to override the operator from the agreements")


class LinkUpdate(InputModel):
    capacity: BitRate | None = None
    medium: Medium | None = None
    tier: Tier | None = None
    status: Status | None = None
    operator_id: int | None = None


class LinkRead(ReadModel):
    id: int
    slug: str
    a_interface_id: int
    b_interface_id: int
    a_device_id: int
    b_device_id: int
    capacity: int
    medium: Medium
    tier: Tier
    status: Status
    province_id: int | None
    operator_id: int | None
    operator_override: bool


# Services and subscriptions
class ServiceCreate(InputModel):
    code: Slug
    name: str = Field(min_length=1, max_length=200)
    description: Multiline = ""


class ServiceUpdate(InputModel):
    name: str | None = None
    description: Multiline | None = None


class ServiceRead(ReadModel):
    id: int
    code: str
    name: str
    description: str


class SubscriptionCreate(InputModel):
    agency_id: int
    service_id: int
    bandwidth: BitRate
    access_link_id: int | None = None
    status: Status = Status.active


class SubscriptionUpdate(InputModel):
    bandwidth: BitRate | None = None
    access_link_id: int | None = None
    status: Status | None = None


class SubscriptionRead(ReadModel):
    id: int
    agency_id: int
    service_id: int
    bandwidth: int
    access_link_id: int | None
    status: Status
    operator_id: int | None
