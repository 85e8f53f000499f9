"""Who is acting: carried from the request or command into every service call."""

from dataclasses import dataclass

from tslcd.security.models import Role


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    user_id: int | None = None
    operator_id: int | None = None
    agency_id: int | None = None
    request_id: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.admin, Role.noc, Role.auditor)

    @property
    def edits_everything(self) -> bool:
        return self.role in (Role.admin, Role.noc)


SYSTEM = Actor(username="system", role=Role.admin)
