from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tslcd.core.inputs import Exact, InputModel
from tslcd.security.models import Role


class UserCreate(InputModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    full_name: str = ""
    password: Exact | None = Field(default=None, min_length=10, max_length=1024)
    role: Role
    operator_id: int | None = None
    agency_id: int | None = None


class UserUpdate(InputModel):
    full_name: str | None = None
    password: Exact | None = Field(default=None, min_length=10, max_length=1024)
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


class TokenRequest(InputModel):
    username: str = Field(max_length=64)
    password: Exact = Field(max_length=1024)
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
    note: str | None = None
    prev_hash: str
    hash: str


class AuditVerifyRead(BaseModel):
    ok: bool
    checked: int = Field(description="records whose MAC and link were checked in this run")
    problem: str | None = Field(description="what is wrong, naming the first bad record")
    record_id: int | None = Field(description="the first bad record")
    mode: str = Field(description="incremental (after the last verified checkpoint) or full")
    first_id: int | None = Field(description="the first record checked in this run")
    last_id: int = Field(description="the newest record in the log")
    checkpoint_id: int | None = Field(description="the last record named by the newest checkpoint")
    checkpoint_at: datetime | None = Field(description="when the newest checkpoint was written (UTC)")
    witness: str | None = Field(description="what the outside witness (NATS JetStream) holds, when configured")
    seconds: float
    notes: list[str] = []
