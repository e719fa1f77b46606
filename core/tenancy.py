"""Who is calling, as every app sees it once authentication has run."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class TenantAccess:
    """The tenant a request acts in, the caller's role there, and the token used (if any)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    token_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"
