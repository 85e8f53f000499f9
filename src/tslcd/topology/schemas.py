"""Response shapes of the topology questions: paths, failure impact, single points of failure, redundancy.

Every answer holds only what the asking actor may see through the registry's permission gate. Parts of a path
that belong to others are given as a `PathSegment` naming the operator alone, and an agency the actor may not
see as a `RedactedAgency`: neither carries an id, a name, a site, an address or a capacity.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

Ref = int | str  # an id, or a natural key: link/site slug, device name, agency code


class ProvinceBrief(BaseModel):
    id: int
    code: str
    name: str


class AgencyBrief(BaseModel):
    id: int
    code: str
    name: str
    province_id: int | None


class RedactedAgency(BaseModel):
    """An agency outside what the actor may see (e.g. the far end of an agency user's path)."""

    redacted: Literal[True] = True
    label: str = Field(description="always \"Cơ quan khác\" (another agency)")


class SiteBrief(BaseModel):
    id: int
    slug: str
    name: str


class DeviceBrief(BaseModel):
    id: int
    name: str
    role: str
    site: SiteBrief | None
    province_id: int | None
    operator_id: int | None


class LinkBrief(BaseModel):
    id: int
    slug: str
    tier: str
    operator_id: int | None
    capacity: int = Field(description="bit/s")


# Path
class PathDevice(DeviceBrief):
    kind: Literal["device"] = "device"


class PathLink(LinkBrief):
    kind: Literal["link"] = "link"


class PathSegment(BaseModel):
    """Consecutive devices and links of one other operator, named by that operator only."""

    kind: Literal["segment"] = "segment"
    operator: str | None = Field(description="short name of the operator responsible (e.g. CBĐTW); null if none")
    label: str = Field(description="e.g. \"Phân đoạn CBĐTW\" (CBĐTW segment)")


PathStep = Annotated[PathDevice | PathLink | PathSegment, Field(discriminator="kind")]


class PathRead(BaseModel):
    from_agency: AgencyBrief | RedactedAgency
    to_agency: AgencyBrief | RedactedAgency
    links: int = Field(description="number of links (hops) on the path, those inside segments included")
    steps: list[PathStep] = Field(
        description="device, link, device, … from one end to the other; the parts the asking actor may not see "
                    "are one segment per run of the same operator")


# Impact
class ImpactRequest(BaseModel):
    links: list[Ref] = []
    devices: list[Ref] = []
    sites: list[Ref] = []


class ProvinceImpact(BaseModel):
    province: ProvinceBrief | None
    agencies_lost: int
    agencies_redundancy_lost: int
    subscriptions_lost: int


class ImpactRead(BaseModel):
    """The lists and counts cover what the asking actor may see (partners: their own devices, links and
    subscriptions; every agency)."""

    failed_links: list[LinkBrief]
    failed_devices: list[DeviceBrief] = Field(description="the devices asked for and those of the sites asked for")
    already_inactive: list[str] = Field(description="failures that change nothing: the object is not active")
    agencies_lost: list[AgencyBrief] = Field(description="agencies none of whose devices keeps service")
    agencies_redundancy_lost: list[AgencyBrief] = Field(
        description="agencies that keep service but, redundant before, would now be cut off by one link")
    subscriptions_lost: list[int] = Field(description="ids of the subscriptions lost")
    devices_cut_off: int = Field(description="devices that lose the core, the failed ones included")
    by_province: list[ProvinceImpact]


# Single points of failure
class SpofItem(BaseModel):
    kind: Literal["link", "device"]
    id: int
    name: str = Field(description="link slug or device name")
    tier: str | None = None
    role: str | None = None
    province_id: int | None
    operator_id: int | None
    agencies_lost: int
    subscriptions_lost: int


class ProvinceSpof(BaseModel):
    province: ProvinceBrief | None
    links: int
    devices: int
    agencies_exposed: int = Field(description="agencies lost by the worst single failure in the province")


class SpofRead(BaseModel):
    """Only the links and devices the asking actor may see are listed and counted."""

    province: ProvinceBrief | None
    total: int = Field(description="single points of failure found, before the limit")
    items: list[SpofItem] = Field(description="worst first: by agencies, then subscriptions lost")
    by_province: list[ProvinceSpof]


# Redundancy
class ProvinceRedundancy(BaseModel):
    province: ProvinceBrief | None
    agencies: int = Field(description="active agencies of the province")
    redundant: int = Field(description="served, and no single link cuts them off the core")
    single_homed: int = Field(description="served, but one link would cut them off")
    unserved: int = Field(description="equipment registered, none of it connected to the core")
    no_equipment: int = Field(description="no active device registered at their premises")
    score: float = Field(ge=0, le=1, description="redundant / agencies")


class RedundancyRead(BaseModel):
    provinces: list[ProvinceRedundancy]
    total: ProvinceRedundancy
