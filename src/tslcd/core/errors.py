"""Domain errors, raised by services and rendered once as RFC 9457 problem+json."""

from typing import Any


class DomainError(Exception):
    status = 400
    type = "/problems/bad-request"
    title = "Bad request"
    # The unit of work commits what it wrote before raising (e.g. a failed login is counted and audited).
    keep_writes = False

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, title: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        if title:
            self.title = title

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(DomainError):
    status, type, title = 404, "/problems/not-found", "Not found"


class NotAuthenticated(DomainError):
    status, type, title = 401, "/problems/not-authenticated", "Not authenticated"


class PermissionDenied(DomainError):
    status, type, title = 403, "/problems/forbidden", "Permission denied"


class Conflict(DomainError):
    status, type, title = 409, "/problems/conflict", "Conflict"


class DomainValidationError(DomainError):
    status, type, title = 422, "/problems/validation", "Invalid input"


class PayloadTooLarge(DomainError):
    status, type, title = 413, "/problems/too-large", "Request too large"


class TooManyRequests(DomainError):
    status, type, title = 429, "/problems/too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw):
        super().__init__(detail, **kw)
        self.retry_after = retry_after


class Unavailable(DomainError):
    status, type, title = 503, "/problems/unavailable", "Service unavailable"
