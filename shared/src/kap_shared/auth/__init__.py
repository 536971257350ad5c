"""Authentication and authorization (CONTRACT section 4)."""

from .dependencies import current_principal, ensure_site, require_roles
from .tokens import InvalidToken, Principal, TokenVerifier, mint_token

__all__ = [
    "InvalidToken",
    "Principal",
    "TokenVerifier",
    "current_principal",
    "ensure_site",
    "mint_token",
    "require_roles",
]
