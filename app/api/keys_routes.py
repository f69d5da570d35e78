"""`/admin/keys`: API keys, for admins. The CLI's `lineup keys` does the same on the database.

A key is shown once, in the answer that creates it; afterwards only its
name, role, prefix and dates are. Revoking takes effect on the next request
of every process, and ends the browser sessions opened with the key.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from app.access.keys import KeyInfo, create_key, list_keys, revoke_key
from app.access.roles import Role
from app.api.auth import CallerDep, SessionsDep, allow
from app.api.errors import error_responses, router_errors

router = APIRouter(prefix="/admin/keys", tags=["keys"], responses=router_errors(503))
KeyName = Annotated[str, Path(min_length=1, max_length=64, description="The key's name.")]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="Unique; letters, digits, ._@-")
    role: Role
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class KeyOut(BaseModel):
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool

    @classmethod
    def of(cls, info: KeyInfo) -> "KeyOut":
        return cls(
            name=info.name,
            role=info.role,
            prefix=info.prefix,
            created_at=info.created_at,
            created_by=info.created_by,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
            last_used_at=info.last_used_at,
            active=info.active,
        )


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself. Shown this once; only its hash is kept.")


@router.get("", dependencies=[allow(Role.admin)])
def keys(caller: CallerDep, sessions: SessionsDep) -> list[KeyOut]:
    """Every key, oldest first, without secrets."""
    return [KeyOut.of(info) for info in list_keys(sessions)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409),
    dependencies=[allow(Role.admin)],
)
def new_key(request: KeyCreate, caller: CallerDep, sessions: SessionsDep) -> NewKeyOut:
    """Create a key; the answer holds the key, which is never shown again."""
    made = create_key(
        sessions,
        name=request.name,
        role=request.role,
        by=caller.actor,
        expires_in_days=request.expires_in_days,
    )
    return NewKeyOut(**KeyOut.of(made.info).model_dump(), key=made.key)


@router.post("/{name}/revoke", responses=error_responses(404), dependencies=[allow(Role.admin)])
def revoke(name: KeyName, caller: CallerDep, sessions: SessionsDep) -> KeyOut:
    """Revoke the key at once (revoking a revoked key changes nothing)."""
    return KeyOut.of(revoke_key(sessions, name, by=caller.actor))
