"""The web application: every domain's router under /api/v1, errors as problem+json.

Every error leaves as RFC 9457 problem+json carrying the request id. The database's own text never reaches a
client: a refused constraint is a 409 saying what kind of conflict it is, a busy database a 503 with
Retry-After, and anything unexpected a 500 whose details go to the server's log under the same request id.
"""

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tslcd import __version__
from tslcd.core.errors import DomainError, TooManyRequests

PROBLEM = "application/problem+json"
log = logging.getLogger("tslcd.api")


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or request.headers.get("x-request-id") or "-"


def _problem(request: Request, status: int, type_: str, title: str, detail: str, errors: list | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, "request_id": _request_id(request)}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM,
                        headers={"x-request-id": body["request_id"], **(headers or {})})


def _constraint(exc: IntegrityError) -> str:
    """Which rule the database enforced, in words, without echoing its message (values, table layout)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "unique" in text or "duplicate" in text:
        return "an object with the same unique value already exists"
    if "foreign key" in text:
        return "the change refers to an object that does not exist, or removes one that is still referred to"
    if "not null" in text or "null value" in text:
        return "a required value is missing"
    return "the change breaks a rule of the stored data"


def create_app() -> FastAPI:
    from tslcd.assurance.views import router as assurance_router
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
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if given.isascii() and 0 < len(given) <= 64 and given.isprintable() \
            else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["x-request-id"] = request.state.request_id
        return response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        body = exc.problem()
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return _problem(request, exc.status, body["type"], body["title"], body["detail"], body.get("errors"),
                        headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _problem(request, 422, "/problems/validation", "Invalid input",
                        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _problem(request, exc.status_code, f"/problems/http-{exc.status_code}", str(exc.detail),
                        str(exc.detail))

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError):
        log.warning("request %s: the database refused a change: %s", _request_id(request), exc.orig)
        return _problem(request, 409, "/problems/conflict", "Conflict", _constraint(exc))

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError):
        log.warning("request %s: the database refused a value: %s", _request_id(request), exc.orig)
        return _problem(request, 422, "/problems/validation", "Invalid input",
                        "a value is out of range or too long for what it is stored in")

    @app.exception_handler(OperationalError)
    async def operational_error(request: Request, exc: OperationalError):
        log.error("request %s: database unavailable or busy: %s", _request_id(request), exc.orig)
        return _problem(request, 503, "/problems/unavailable", "Service unavailable",
                        "the database is busy or unavailable; try again shortly", headers={"Retry-After": "2"})

    @app.exception_handler(OverflowError)
    async def overflow_error(request: Request, exc: OverflowError):
        # Inputs are bounded where they enter (core/inputs.py, core/deps.py); this is the net below them.
        log.warning("request %s: a number out of range reached the database: %s", _request_id(request), exc)
        return _problem(request, 422, "/problems/validation", "Invalid input", "a number is out of range")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        log.error("request %s: %s %s failed", _request_id(request), request.method, request.url.path, exc_info=exc)
        return _problem(request, 500, "/problems/internal", "Internal error",
                        f"an unexpected error occurred; it is logged under request id {_request_id(request)}")

    for router in (security_router, registry_router, topology_router, telemetry_router, assurance_router):
        app.include_router(router, prefix="/api/v1")
    if get_settings().metrics_enabled:
        metrics.install(app)  # /metrics, outside /api/v1 and without a token

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/docs")

    return app
