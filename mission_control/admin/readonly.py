"""Log admins are read-only: a row is a record; the pipeline's own operations change it."""

from __future__ import annotations


class ReadOnlyAdminMixin:
    """No add, change or delete from the admin (retention deletes old rows)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
