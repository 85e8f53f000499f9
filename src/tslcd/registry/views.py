"""REST endpoints of the registry: the same five operations plus import/export for every object type."""

import inspect
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from tslcd.core.bulk import ImportReport
from tslcd.core.config import get_settings
from tslcd.core.deps import ObjectId, Offset, SessionDep, charset_of, read_body
from tslcd.security.deps import ActorDep
from tslcd.core.listing import Page
from tslcd.registry import adminunits, schemas, service
from tslcd.registry.resources import RESOURCES, Resource, key_filters

router = APIRouter()

CSV_OR_JSON = {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "array"}}}


def _filters_dependency(res: Resource):
    """A dependency whose signature lists the resource's filters, so OpenAPI documents each one."""
    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                annotation=Annotated[list[str] | None, Query(description=f"filter on {column}; "
                                                                             "repeat for several values")],
                                default=None)
              for name, column in res.filters.items()]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[list[str] | None, Query(
                                     description=f"filter on {ref.target} by {ref.model.__tablename__[:-1]} "
                                                 "natural key (slug, code or name)")], default=None)
               for name, ref in key_filters(res).items()]

    def dependency(**kwargs: Any) -> dict[str, list[Any]]:
        return {k: v for k, v in kwargs.items() if v}

    dependency.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return dependency


def _add_resource_routes(res: Resource) -> None:
    from fastapi import Depends

    tag = res.name
    read_model: type[BaseModel] = res.read
    page_model = Page[read_model]  # type: ignore[valid-type]
    filters_dep = Depends(_filters_dependency(res))
    max_page = get_settings().page_size_max

    def list_view(session: SessionDep, actor: ActorDep, filters: dict = filters_dep,
                  q: Annotated[str | None, Query(max_length=200, description=(
                      ("search in " + ", ".join(getattr(res.model, "__search_fields__", ()))
                       + " ignoring case and diacritics ('quang ninh' finds 'Quảng Ninh')")
                      if getattr(res.model, "__search_fields__", ()) else "not searchable: refused"))] = None,
                  as_of: Annotated[str | None, Query(pattern=r"^(all|\d{4}-\d{2}-\d{2})$", description=(
                      "objects with validity dates: those in force on this date (default: today), "
                      "or 'all' for history"))] = None,
                  limit: Annotated[int, Query(ge=1, le=max_page)] = 50,
                  offset: Offset = 0):
        count, rows = service.list_objects(session=session, actor=actor, res=res, filters=filters, q=q,
                                           as_of=as_of, limit=limit, offset=offset)
        return page_model(count=count, limit=limit, offset=offset,
                          results=[read_model.model_validate(r) for r in rows])

    def get_view(obj_id: ObjectId, session: SessionDep, actor: ActorDep):
        return service.get_object(session=session, actor=actor, res=res, obj_id=obj_id)

    def create_view(obj_in: Annotated[res.create, Body()], session: SessionDep, actor: ActorDep):  # type: ignore
        return service.create_object(session=session, actor=actor, res=res, obj_in=obj_in)

    def update_view(obj_id: ObjectId, obj_in: Annotated[res.update, Body()], session: SessionDep,  # type: ignore
                    actor: ActorDep):
        return service.update_object(session=session, actor=actor, res=res, obj_id=obj_id, obj_in=obj_in)

    def delete_view(obj_id: ObjectId, session: SessionDep, actor: ActorDep) -> Response:
        service.delete_object(session=session, actor=actor, res=res, obj_id=obj_id)
        return Response(status_code=204)

    async def import_view(request: Request, session: SessionDep, actor: ActorDep,
                          format: Annotated[str | None, Query(pattern="^(csv|json)$")] = None,
                          encoding: Annotated[str | None, Query(
                              pattern="^[A-Za-z0-9_-]{1,20}$",
                              description="the file's encoding when not UTF-8: cp1258, cp1252 or latin-1 "
                                          "(or a charset in Content-Type)")] = None) -> ImportReport:
        fmt = format or ("json" if "json" in request.headers.get("content-type", "") else "csv")
        data = await read_body(request)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(service.import_objects, session=session, actor=actor, res=res, data=data,
                                       fmt=fmt, encoding=encoding or charset_of(request))

    def export_view(session: SessionDep, actor: ActorDep,
                    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv") -> Response:
        body = service.export_objects(session=session, actor=actor, res=res, fmt=format)
        media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        return Response(body, media_type=media,
                        headers={"content-disposition": f'attachment; filename="{res.name}.{format}"'})

    base = f"/{res.name}"
    router.add_api_route(base, list_view, methods=["GET"], response_model=page_model, tags=[tag],
                         summary=f"List {res.label}s")
    router.add_api_route(f"{base}/export", export_view, methods=["GET"], tags=[tag],
                         summary=f"Export {res.label}s as CSV or JSON")
    router.add_api_route(f"{base}/import", import_view, methods=["POST"], tags=[tag],
                         summary=f"Import {res.label}s (all or nothing)", response_model=ImportReport,
                         openapi_extra={"requestBody": {"content": CSV_OR_JSON, "required": True}})
    router.add_api_route(f"{base}/{{obj_id}}", get_view, methods=["GET"], response_model=read_model, tags=[tag],
                         summary=f"Get a {res.label}")
    router.add_api_route(base, create_view, methods=["POST"], response_model=read_model, status_code=201,
                         tags=[tag], summary=f"Create a {res.label}")
    router.add_api_route(f"{base}/{{obj_id}}", update_view, methods=["PATCH"], response_model=read_model,
                         tags=[tag], summary=f"Change a {res.label}")
    router.add_api_route(f"{base}/{{obj_id}}", delete_view, methods=["DELETE"], status_code=204, tags=[tag],
                         summary=f"Delete a {res.label}")


@router.get("/admin-units/{obj_id}/lineage", tags=["admin-units"], response_model=schemas.LineageRead)
def lineage_view(obj_id: ObjectId, session: SessionDep, actor: ActorDep,
                 on: Annotated[date | None, Query(description="the unit that covers it on this date")] = None):
    """Where a unit's territory went in a merger, where it came from, and which unit holds it on a date."""
    unit = service.get_object(session=session, actor=actor, res=RESOURCES["admin-units"], obj_id=obj_id)
    wrap = schemas.LinkedUnit.of
    return schemas.LineageRead(
        unit=unit,
        successors=[wrap(u, d) for u, d in adminunits.successors(session=session, unit_id=obj_id)],
        predecessors=[wrap(u, d) for u, d in adminunits.predecessors(session=session, unit_id=obj_id)],
        current=adminunits.current_unit_for(session=session, unit_id=obj_id, on=on or date.today()))


for _res in RESOURCES.values():
    _add_resource_routes(_res)
