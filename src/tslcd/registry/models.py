"""The special-purpose network's source of truth: units, agencies, operators, sites, devices, links, services."""

import enum
from datetime import date

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, Enum, Float, ForeignKey, Index, Integer,
                        LargeBinary, String, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tslcd.core.database import Base, TimestampMixin
from tslcd.core.search import Searchable


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=24, validate_strings=True)


class UnitKind(str, enum.Enum):
    central = "central"
    province = "province"
    district = "district"
    commune = "commune"


class Status(str, enum.Enum):
    """Lifecycle of a network object."""

    planned = "planned"
    active = "active"
    down = "down"
    decommissioning = "decommissioning"
    retired = "retired"


class Tier(str, enum.Enum):
    """Network tier; `premises` is equipment at an agency's premises."""

    backbone = "backbone"
    access_1 = "access_1"  # mạng truy nhập cấp I: regional centre → province
    access_2 = "access_2"  # mạng truy nhập cấp II: province → commune and agencies
    metro = "metro"
    premises = "premises"


class AgencyKind(str, enum.Enum):
    party = "party"
    state = "state"
    national_assembly = "national_assembly"
    people_council = "people_council"
    people_committee = "people_committee"
    front = "front"
    mass_organisation = "mass_organisation"
    judiciary = "judiciary"
    other = "other"


class SiteKind(str, enum.Enum):
    regional_centre = "regional_centre"  # trung tâm miền
    backup_centre = "backup_centre"  # trung tâm dự phòng
    metro_pop = "metro_pop"  # mạng đô thị
    provincial_centre = "provincial_centre"  # trung tâm tỉnh
    gateway = "gateway"  # cổng kết nối
    commune_node = "commune_node"  # điểm truy nhập cấp xã
    agency_premises = "agency_premises"


class DeviceRole(str, enum.Enum):
    core_router = "core_router"
    pe_router = "pe_router"
    gateway_router = "gateway_router"
    access_switch = "access_switch"
    cpe = "cpe"
    firewall = "firewall"


class Medium(str, enum.Enum):
    fibre = "fibre"
    copper = "copper"
    microwave = "microwave"
    satellite = "satellite"
    leased = "leased"


class SnmpVersion(str, enum.Enum):
    v1 = "v1"
    v2c = "v2c"
    v3 = "v3"


class AdminUnit(Searchable, Base):
    """An administrative unit (central, province, district, commune) valid over a period of dates."""

    __search_fields__ = ("name", "code")

    __tablename__ = "admin_units"
    __table_args__ = (UniqueConstraint("kind", "code", "valid_from", name="uq_admin_units_kind_code_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[UnitKind] = mapped_column(_enum(UnitKind))
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(120), default="")
    unit_type: Mapped[str] = mapped_column(String(40), default="")  # Tỉnh, Thành phố, Quận, Xã, Phường, Đặc khu…
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)

    parent: Mapped["AdminUnit | None"] = relationship(remote_side=[id], lazy="raise_on_sql")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class AdminUnitSuccession(Base):
    """A merge or split: the predecessor's territory went (wholly or partly) to the successor."""

    __tablename__ = "admin_unit_successions"

    predecessor_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"), primary_key=True)
    successor_id: Mapped[int] = mapped_column(ForeignKey("admin_units.id", ondelete="CASCADE"), primary_key=True,
                                              index=True)
    effective: Mapped[date] = mapped_column(Date)
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)  # where an old address goes by default


class Operator(Searchable, TimestampMixin, Base):
    """A network operator: CBĐTW itself or a partner such as VNPT."""

    __search_fields__ = ("name", "slug")

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(40), default="")

    def __str__(self) -> str:
        return self.short_name or self.slug


class Agreement(TimestampMixin, Base):
    """Who runs which tier where: an operator's responsibility for a tier in one province (or nationwide)."""

    __tablename__ = "agreements"
    __table_args__ = (Index("ix_agreements_lookup", "tier", "province_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="RESTRICT"), index=True)
    tier: Mapped[Tier] = mapped_column(_enum(Tier))
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200), default="")  # the signed agreement, e.g. "HĐ 2016"

    def __str__(self) -> str:
        return f"agreement {self.id} ({self.tier.value})"


class Agency(Searchable, TimestampMixin, Base):
    """A Party or State organisation served by the network, known by its identifier code (mã định danh)."""

    __search_fields__ = ("name", "code")

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[AgencyKind] = mapped_column(_enum(AgencyKind))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    email: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    # Codes are re-assigned when bodies merge (Decision 09/2025): a code is valid over a period.
    valid_from: Mapped[date | None] = mapped_column(Date, index=True)
    valid_to: Mapped[date | None] = mapped_column(Date, index=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Site(Searchable, TimestampMixin, Base):
    """A place holding equipment: a centre, a PoP, a gateway or an agency's premises."""

    __search_fields__ = ("name", "slug")

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[SiteKind] = mapped_column(_enum(SiteKind))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"), index=True)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)

    def __str__(self) -> str:
        return self.slug


class SnmpCredential(TimestampMixin, Base):
    """SNMP access for pollers; the secret parts are encrypted at rest and never leave through the API."""

    __tablename__ = "snmp_credentials"
    __secret_columns__ = ("secret",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    version: Mapped[SnmpVersion] = mapped_column(_enum(SnmpVersion))
    username: Mapped[str] = mapped_column(String(80), default="")  # v3 user; not secret
    auth_protocol: Mapped[str] = mapped_column(String(16), default="")
    priv_protocol: Mapped[str] = mapped_column(String(16), default="")
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM of {"community"|"auth_key","priv_key"}

    def __str__(self) -> str:
        return self.name


class Device(Searchable, TimestampMixin, Base):
    """A router, switch, firewall or CPE; its responsible operator follows the agreements unless overridden."""

    __search_fields__ = ("name", "mgmt_address")

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    role: Mapped[DeviceRole] = mapped_column(_enum(DeviceRole))
    tier: Mapped[Tier] = mapped_column(_enum(Tier))
    vendor: Mapped[str] = mapped_column(String(80), default="")
    model: Mapped[str] = mapped_column(String(80), default="")
    mgmt_address: Mapped[str | None] = mapped_column(String(64))
    snmp_credential_id: Mapped[int | None] = mapped_column(ForeignKey("snmp_credentials.id", ondelete="RESTRICT"))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="RESTRICT"), index=True)
    operator_override: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return self.name


class Interface(Searchable, TimestampMixin, Base):
    """A port of a device."""

    __search_fields__ = ("name", "description")

    __tablename__ = "interfaces"
    __table_args__ = (UniqueConstraint("device_id", "name", name="uq_interfaces_device_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    if_index: Mapped[int | None] = mapped_column(Integer)
    speed: Mapped[int | None] = mapped_column(BigInteger)  # bit/s
    description: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    def __str__(self) -> str:
        return f"{self.device_id}:{self.name}"


class Link(Searchable, TimestampMixin, Base):
    """A circuit between two interfaces with its capacity, tier and responsible operator."""

    __search_fields__ = ("slug",)

    __tablename__ = "links"
    __table_args__ = (CheckConstraint("a_interface_id <> b_interface_id", name="distinct_ends"),
                      CheckConstraint("capacity > 0", name="positive_capacity"))

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(160), unique=True)
    a_interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id", ondelete="RESTRICT"), unique=True)
    b_interface_id: Mapped[int] = mapped_column(ForeignKey("interfaces.id", ondelete="RESTRICT"), unique=True)
    # Device ends are kept beside the interfaces so that the topology loads without joins.
    a_device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"), index=True)
    b_device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="RESTRICT"), index=True)
    capacity: Mapped[int] = mapped_column(BigInteger)  # bit/s
    medium: Mapped[Medium] = mapped_column(_enum(Medium), default=Medium.fibre)
    tier: Mapped[Tier] = mapped_column(_enum(Tier))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    province_id: Mapped[int | None] = mapped_column(ForeignKey("admin_units.id", ondelete="RESTRICT"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="RESTRICT"), index=True)
    operator_override: Mapped[bool] = mapped_column(Boolean, default=False)

    def __str__(self) -> str:
        return self.slug


class Service(Searchable, TimestampMixin, Base):
    """A service of the catalogue carried on the network."""

    __search_fields__ = ("name", "code")

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500), default="")

    def __str__(self) -> str:
        return self.code


class Subscription(TimestampMixin, Base):
    """An agency's use of a service at a bandwidth over an access link."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("agency_id", "service_id", "access_link_id", name="uq_subscriptions_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"), index=True)
    bandwidth: Mapped[int] = mapped_column(BigInteger)  # bit/s
    access_link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="RESTRICT"), index=True)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.active)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="RESTRICT"), index=True)

    def __str__(self) -> str:
        return f"subscription {self.id}"
