"""REST endpoints of telemetry: series, utilization, the capacity report, alarms, pushed samples, thresholds.

Periods are `from` and `to`: a date (YYYY-MM-DD, its whole UTC day; `to` includes its day) or an ISO 8601 time
(UTC unless an offset is given). Every read is scoped like the registry: a partner sees its operator's links and
alarms, an agency its own access links.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from tslcd.core.config import get_settings
from tslcd.core.deps import ObjectId, Offset, SessionDep, read_body
from tslcd.core.inputs import ID_MAX
from tslcd.security.deps import ActorDep
from tslcd.core.listing import Page
from tslcd.registry import service as registry
from tslcd.registry.models import Tier
from tslcd.telemetry import alarms, capacity, schemas, service, utilization
from tslcd.telemetry.models import AlarmKind, Severity

router = APIRouter(prefix="/telemetry", tags=["telemetry"])

From = Annotated[str | None, Query(alias="from", description="date or time; default: an hour before `to`")]
ReportFrom = Annotated[str | None, Query(alias="from", description=(
    f"date or time; default: {capacity.DEFAULT_SPAN_TEXT} before `to`"))]
To = Annotated[str | None, Query(alias="to", description="date (included) or time; default: now")]
# Ids in queries, bounded like path ids (ids are INTEGER columns: 32 bits on PostgreSQL)
IdQuery = Annotated[int | None, Query(ge=1, le=ID_MAX)]
IdsQuery = Annotated[list[Annotated[int, Field(ge=1, le=ID_MAX)]] | None, Query()]
ResolutionQuery = Annotated[schemas.Resolution | Literal["auto"],
                            Query(description="auto: raw up to a day, 5m up to 5 days, 1h up to 62 days, else 1d")]
SAMPLE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": schemas.SampleIn.model_json_schema()}},
    "text/csv": {"schema": {"type": "string"}, "example": "device,interface,ts,interval_s,in_bps,out_bps,oper_up\n"
                                                           "pe-1,Te0/0/0,2025-07-01T10:05:00Z,300,1.2e9,8e8,true"},
}}}


@router.get("/interfaces/{interface_id}/series")
def interface_series_view(interface_id: ObjectId, session: SessionDep, actor: ActorDep, start: From = None,
                          end: To = None, resolution: ResolutionQuery = "auto") -> schemas.SeriesRead:
    begin, stop = service.parse_period(start, end)
    return utilization.interface_series(session=session, actor=actor, interface_id=interface_id, start=begin,
                                        end=stop, resolution=resolution)


@router.get("/links/{link_id}/series")
def link_series_view(link_id: ObjectId, session: SessionDep, actor: ActorDep, start: From = None, end: To = None,
                     resolution: ResolutionQuery = "auto") -> schemas.SeriesRead:
    begin, stop = service.parse_period(start, end)
    return utilization.link_series(session=session, actor=actor, link_id=link_id, start=begin, end=stop,
                                   resolution=resolution)


@router.get("/links/{link_id}/utilization")
def link_utilization_view(link_id: ObjectId, session: SessionDep, actor: ActorDep, start: From = None, end: To = None,
                          resolution: ResolutionQuery = "auto") -> schemas.LinkUtilization:
    registry.get_object(session=session, actor=actor, res=registry.resource("links"), obj_id=link_id)
    begin, stop = service.parse_period(start, end)
    return utilization.links_utilization(session=session, actor=actor, start=begin, end=stop,
                                         resolution=resolution, link_ids=[link_id]).links[0]


@router.get("/utilization/links")
def links_utilization_view(session: SessionDep, actor: ActorDep, start: From = None, end: To = None,
                           resolution: ResolutionQuery = "auto", tier: Annotated[list[Tier] | None, Query()] = None,
                           province_id: IdsQuery = None,
                           operator_id: IdsQuery = None) -> schemas.LinkUtilizationList:
    """Every visible active link's peak, 95th percentile and average per direction, busiest first."""
    begin, stop = service.parse_period(start, end)
    return utilization.links_utilization(session=session, actor=actor, start=begin, end=stop,
                                         resolution=resolution, tiers=tier, province_ids=province_id,
                                         operator_ids=operator_id)


@router.get("/utilization/provinces")
def provinces_utilization_view(session: SessionDep, actor: ActorDep, start: From = None, end: To = None,
                               resolution: ResolutionQuery = "auto",
                               province_id: IdsQuery = None
                               ) -> schemas.ProvinceUtilizationList:
    """Each province's uplinks (access_1 links to the regional and backup centres) taken together."""
    begin, stop = service.parse_period(start, end)
    return utilization.provinces_utilization(session=session, actor=actor, start=begin, end=stop,
                                             resolution=resolution, province_ids=province_id)


CAPACITY_DESCRIPTION = (
    "'N of M provinces under 60 %, K over 80 %' with the lists behind it; default period: the "
    f"{capacity.DEFAULT_SPAN_TEXT} before `to`. The link table lists one page of the links with data, busiest first, "
    "with their count; links without data are counted, not listed (JSON `links`; CSV of links, with the counts in "
    "the X-Total-Count and X-Links-Without-Data headers).")
CAPACITY_CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "headers": {
    "X-Total-Count": {"description": "CSV of links: links with data", "schema": {"type": "integer"}},
    "X-Links-Without-Data": {"description": "CSV of links: links without data in the period (not listed)",
                             "schema": {"type": "integer"}}}}}


@router.get("/reports/capacity", response_model=schemas.CapacityReport, description=CAPACITY_DESCRIPTION,
            responses=CAPACITY_CSV)
def capacity_report_view(session: SessionDep, actor: ActorDep, start: ReportFrom = None, end: To = None,
                         basis: Annotated[schemas.Basis, Query(description="class provinces by p95 or peak")] = "p95",
                         warning_pct: Annotated[float | None, Query(gt=0, le=100)] = None,
                         critical_pct: Annotated[float | None, Query(gt=0, le=100)] = None,
                         top: Annotated[int, Query(ge=1, le=1000, description="busiest (and soonest crossing) "
                                                   "links listed")] = 10,
                         resolution: ResolutionQuery = "auto",
                         format: Annotated[Literal["json", "csv"], Query()] = "json",
                         table: Annotated[Literal["provinces", "links"], Query(description="CSV: which table")]
                         = "provinces",
                         limit: Annotated[int, Query(ge=1, le=capacity.LINKS_LIMIT_MAX, description=(
                             "links with data per page of the link table (JSON `links`, CSV of links)"))]
                         = capacity.LINKS_LIMIT,
                         offset: Offset = 0):
    begin, stop = service.parse_period(start, end, default_span=capacity.DEFAULT_SPAN)
    report = capacity.capacity_report(session=session, actor=actor, start=begin, end=stop, basis=basis,
                                      warning_pct=warning_pct, critical_pct=critical_pct, top=top,
                                      resolution=resolution, limit=limit, offset=offset)
    if format == "csv":
        headers = {"content-disposition": f'attachment; filename="capacity-{table}-{begin:%Y%m%d}-{stop:%Y%m%d}.csv"'}
        if table == "links":
            headers |= {"x-total-count": str(report.links.count),
                        "x-links-without-data": str(report.links.without_data)}
        return Response(capacity.report_csv(report, table), media_type="text/csv; charset=utf-8", headers=headers)
    return report


@router.get("/alarms")
def alarms_view(session: SessionDep, actor: ActorDep,
                active: Annotated[bool | None, Query(description="true: not cleared; false: cleared")] = None,
                kind: Annotated[list[AlarmKind] | None, Query()] = None,
                severity: Annotated[list[Severity] | None, Query()] = None,
                province_id: IdsQuery = None,
                province: Annotated[list[str] | None, Query(description="province code, e.g. 01")] = None,
                operator_id: IdsQuery = None,
                operator: Annotated[list[str] | None, Query(description="operator slug, e.g. vnpt")] = None,
                link_id: IdQuery = None, device_id: IdQuery = None,
                limit: Annotated[int, Query(ge=1, le=get_settings().page_size_max)] = 50,
                offset: Offset = 0) -> Page[schemas.AlarmRead]:
    count, rows = alarms.list_alarms(session=session, actor=actor, active=active, kind=kind, severity=severity,
                                     province_id=province_id, province_code=province, operator_id=operator_id,
                                     operator_slug=operator, link_id=link_id, device_id=device_id, limit=limit,
                                     offset=offset)
    return Page[schemas.AlarmRead](count=count, limit=limit, offset=offset,
                                   results=[schemas.AlarmRead.model_validate(r) for r in rows])


@router.post("/samples", openapi_extra=SAMPLE_BODY)
async def push_samples_view(request: Request, session: SessionDep, actor: ActorDep,
                            format: Annotated[Literal["json", "csv"] | None, Query()] = None) -> schemas.IngestRead:
    """Push measured rates (a JSON array of samples, or CSV): every row valid, or nothing is stored and each bad
    row is reported with its position (JSON, from 1) or line (CSV)."""
    fmt = format or ("csv" if "csv" in request.headers.get("content-type", "") else "json")
    data = await read_body(request)
    result = await run_in_threadpool(service.import_samples, session=session, actor=actor, data=data, fmt=fmt)
    return schemas.IngestRead(stored=result.stored, duplicates=result.duplicates,
                              alarms_raised=result.alarms_raised, alarms_cleared=result.alarms_cleared)


@router.get("/poller-cycles")
def poller_cycles_view(session: SessionDep, actor: ActorDep,
                       shard: Annotated[str | None, Query(description="e.g. 1/2")] = None,
                       limit: Annotated[int, Query(ge=1, le=get_settings().page_size_max)] = 50,
                       offset: Offset = 0) -> Page[schemas.PollerCycleRead]:
    """The pollers' cycles, newest first; each one's duration covers polling, the rates and the alarms."""
    count, rows = service.list_poller_cycles(session=session, actor=actor, shard=shard, limit=limit, offset=offset)
    return Page[schemas.PollerCycleRead](count=count, limit=limit, offset=offset,
                                         results=[schemas.PollerCycleRead.model_validate(r) for r in rows])


@router.get("/thresholds")
def thresholds_view(session: SessionDep, actor: ActorDep) -> list[schemas.ThresholdRead]:
    return service.list_thresholds(session=session, actor=actor)


@router.put("/thresholds")
def set_threshold_view(threshold_in: schemas.ThresholdIn, session: SessionDep, actor: ActorDep
                       ) -> schemas.ThresholdRead:
    """Set a tier's or a link's thresholds (a link's beat its tier's, which beat the defaults)."""
    return service.set_threshold(session=session, actor=actor, threshold_in=threshold_in)


@router.delete("/thresholds/{threshold_id}", status_code=204)
def delete_threshold_view(threshold_id: ObjectId, session: SessionDep, actor: ActorDep) -> Response:
    service.delete_threshold(session=session, actor=actor, threshold_id=threshold_id)
    return Response(status_code=204)
