from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tslcd.security.models import Role


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    full_name: str = ""
    password: str | None = Field(default=None, min_length=10)
    role: Role
    operator_id: int | None = None
    agency_id: int | None = None


class UserUpdate(BaseModel):
    full_name: str | None = None
    password: str | None = Field(default=None, min_length=10)
    role: Role | None = None
    operator_id: int | None = None
    agency_id: int | None = None
    is_active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: Role
    operator_id: int | None
    agency_id: int | None
    is_active: bool


class TokenRequest(BaseModel):
    username: str
    password: str
    name: str = "api"


class TokenIssued(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime | None
    username: str
    role: Role


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ts: datetime
    actor: str
    request_id: str | None
    action: str
    object_type: str
    object_id: int | None
    object_repr: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class AuditVerifyRead(BaseModel):
    ok: bool
    checked: int
    problem: str | None
    record_id: int | None
