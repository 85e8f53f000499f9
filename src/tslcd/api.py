"""The web application: every domain's router under /api/v1, errors as problem+json."""

import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tslcd import __version__
from tslcd.core.errors import DomainError

PROBLEM = "application/problem+json"


def _problem(status: int, type_: str, title: str, detail: str, errors: list | None = None) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app() -> FastAPI:
    from tslcd.core.config import get_settings
    from tslcd.registry.views import router as registry_router
    from tslcd.security.views import router as security_router
    from tslcd.telemetry import metrics
    from tslcd.telemetry.views import router as telemetry_router
    from tslcd.topology.views import router as topology_router

    app = FastAPI(title="tslcd", version=__version__,
                  description="Mạng truyền số liệu chuyên dùng — nguồn dữ liệu gốc, cấu trúc mạng, kiểm toán.")

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["x-request-id"] = request.state.request_id
        return response

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError):
        body = exc.problem()
        return _problem(exc.status, body["type"], body["title"], body["detail"], body.get("errors"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _problem(422, "/problems/validation", "Invalid input",
                        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return _problem(exc.status_code, f"/problems/http-{exc.status_code}", str(exc.detail), str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError):
        return _problem(409, "/problems/conflict", "Conflict", f"the database refused the change: {exc.orig}")

    for router in (security_router, registry_router, topology_router, telemetry_router):
        app.include_router(router, prefix="/api/v1")
    if get_settings().metrics_enabled:
        metrics.install(app)  # /metrics, outside /api/v1 and without a token

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/docs")

    return app
