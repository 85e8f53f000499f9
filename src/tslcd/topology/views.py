"""REST endpoints of the topology: path, failure impact, single points of failure, redundancy."""

from typing import Annotated

from fastapi import APIRouter, Query

from tslcd.core.deps import SessionDep
from tslcd.security.deps import ActorDep
from tslcd.topology import schemas, service

router = APIRouter(prefix="/topology", tags=["topology"])

ProvinceQuery = Annotated[str | None, Query(description="province code (e.g. 01 = Hà Nội, current unit) or id")]


@router.get("/path")
def path_view(session: SessionDep, actor: ActorDep,
              from_agency: Annotated[str, Query(description="agency id or code")],
              to_agency: Annotated[str, Query(description="agency id or code")]) -> schemas.PathRead:
    return service.path(session=session, actor=actor, from_agency=from_agency, to_agency=to_agency)


@router.post("/impact")
def impact_view(session: SessionDep, actor: ActorDep, failure: schemas.ImpactRequest) -> schemas.ImpactRead:
    return service.impact(session=session, actor=actor, links=failure.links, devices=failure.devices,
                          sites=failure.sites)


@router.get("/impact")
def impact_query_view(session: SessionDep, actor: ActorDep,
                      link: Annotated[list[str], Query(description="link id or slug; repeatable")] = [],
                      device: Annotated[list[str], Query(description="device id or name; repeatable")] = [],
                      site: Annotated[list[str], Query(description="site id or slug; repeatable")] = []
                      ) -> schemas.ImpactRead:
    return service.impact(session=session, actor=actor, links=link, devices=device, sites=site)


@router.get("/spof")
def spof_view(session: SessionDep, actor: ActorDep, province: ProvinceQuery = None,
              min_agencies: Annotated[int, Query(ge=1, description="only failures cutting off this many")] = 1,
              limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> schemas.SpofRead:
    return service.spof(session=session, actor=actor, province=province, min_agencies=min_agencies, limit=limit)


@router.get("/redundancy")
def redundancy_view(session: SessionDep, actor: ActorDep, province: ProvinceQuery = None) -> schemas.RedundancyRead:
    return service.redundancy(session=session, actor=actor, province=province)
