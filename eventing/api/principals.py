"""Callers known by a verified token rather than a Django user: authenticated, no permission."""

from __future__ import annotations

from typing import Any


class TokenCaller:
    """The `request.user` of a caller known only by a verified token's claims.

    Authenticated, so `IsAuthenticated` lets it in; it holds no Django permission, because a
    token's claims are not trusted for that. Subclasses name the caller (`get_username`).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    def get_username(self) -> str:
        """How logs and throttles name this caller."""
        raise NotImplementedError

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """No permission at all."""
        return False

    def has_perms(self, perm_list, obj: Any = None) -> bool:
        """No permission at all."""
        return False

    def has_module_perms(self, app_label: str) -> bool:
        """No permission at all."""
        return False

    def __str__(self) -> str:
        return self.get_username()
