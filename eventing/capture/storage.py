"""EventingStorage: wraps any Django storage and emits FILE_CREATE / FILE_DELETE, two-phase."""

from __future__ import annotations

import logging
import mimetypes
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import File
from django.core.files.storage import InvalidStorageError, Storage, storages
from django.core.files.utils import validate_file_name
from django.utils.deconstruct import deconstructible
from django.utils.module_loading import import_string

from eventing.capture.intents import FileIntent, has_triggers
from triggers import types

logger = logging.getLogger(__name__)

CLASS_PATH = "eventing.storage.EventingStorage"  # the public path migrations record


@deconstructible(path=CLASS_PATH)
class EventingStorage(Storage):
    """A storage that behaves exactly like the one it wraps, and emits file events.

    Configure it in `STORAGES` with `OPTIONS` of either `{"backend": "<storage class path>",
    "options": {...}}` or `{"wraps": "<another alias>"}`. Its events carry the alias it is
    configured under: given as the `alias` option, or found by looking itself up in
    `settings.STORAGES` (the one entry with this class and these OPTIONS).

    `save()` emits FILE_CREATE with the name the wrapped storage chose; `delete()` of an
    existing file emits FILE_DELETE. Everything else is passed through unchanged. Nothing is
    recorded unless an enabled trigger listens to the alias.
    """

    # FILE triggers may name only aliases configured with a storage that says this
    # (triggers.validation reads it without importing eventing).
    emits_file_events = True

    def __init__(
        self,
        backend: str | None = None,
        options: dict[str, Any] | None = None,
        wraps: str | None = None,
        alias: str | None = None,
    ) -> None:
        self.init_options = {
            key: value
            for key, value in (
                ("backend", backend),
                ("options", options),
                ("wraps", wraps),
                ("alias", alias),
            )
            if value is not None
        }
        check_options(backend, options, wraps, alias)
        self.alias = alias or find_alias(type(self), self.init_options)
        if wraps is not None:
            if wraps == self.alias:
                raise ImproperlyConfigured(
                    f"STORAGES[{self.alias!r}]['OPTIONS']['wraps']: a storage cannot wrap itself."
                )
            try:
                self._wrapped = storages[wraps]
            except InvalidStorageError as exc:
                raise ImproperlyConfigured(
                    f"STORAGES[{self.alias!r}]['OPTIONS']['wraps']: {wraps!r} is not an alias in "
                    "settings.STORAGES."
                ) from exc
        else:
            self._wrapped = build_backend(backend, options or {}, self.alias)
        if isinstance(self._wrapped, EventingStorage):
            raise ImproperlyConfigured(
                f"STORAGES[{self.alias!r}]['OPTIONS']: {wraps or backend!r} is an "
                "EventingStorage already; wrapping it would emit every event twice."
            )

    @property
    def wrapped(self) -> Storage:
        """The storage doing the work."""
        return self._wrapped

    def __getattr__(self, name: str) -> Any:
        # Attributes of the wrapped storage (location, base_url, bucket_name, …) read through.
        if name.startswith("__") or name == "_wrapped":
            raise AttributeError(name)
        return getattr(self._wrapped, name)

    def __repr__(self) -> str:
        return f"<EventingStorage {self.alias!r} wrapping {type(self._wrapped).__name__}>"

    # Operations that emit events.

    def save(
        self,
        name: str | None,
        content,
        max_length: int | None = None,
        *,
        meta: dict[str, Any] | None = None,
    ) -> str:
        """Save through the wrapped storage; FILE_CREATE with the final name once it is saved.

        `meta` is passed on as the event's Space Cloud `meta` (`{}` without it).
        """
        if not has_triggers(types.FILE_CREATE, self.alias):
            return self._wrapped.save(name, content, max_length=max_length)
        if name is None:
            name = content.name
        if not hasattr(content, "chunks"):
            content = File(content, name)
        wrapped = self._wrapped
        own_steps = type(wrapped).save is Storage.save
        if own_steps:
            # Storage.save's own steps, so the name written down in the intent is the one
            # the storage will use, at the cost of one get_available_name() like a bare save.
            validate_file_name(name, allow_relative_path=True)
            target = wrapped.get_available_name(name, max_length=max_length)
            validate_file_name(target, allow_relative_path=True)

            def operation() -> str:
                return wrapped._save(target, content)
        else:
            # A storage with its own save(): predict the name for the intent, let it choose.
            target = wrapped.get_available_name(name, max_length=max_length)

            def operation() -> str:
                return wrapped.save(name, content, max_length=max_length)

        size = content_size(content)
        intent = FileIntent.open(types.FILE_CREATE, self.alias, self.describe(target, size, meta))
        if intent is None:
            final = operation()
        else:
            try:
                final = operation()
            except Exception as exc:
                intent.failed(exc)
                raise
            if size is None:
                size = self.size_or_none(final)
            intent.succeeded(self.describe(final, size, meta))
        if own_steps:
            # Storage.save's last step; the file is written, so the event above stands.
            validate_file_name(final, allow_relative_path=True)
        return final

    def delete(self, name: str, *, meta: dict[str, Any] | None = None) -> None:
        """Delete through the wrapped storage; FILE_DELETE if the file existed and is gone.

        `meta` is passed on as the event's Space Cloud `meta` (`{}` without it).
        """
        wrapped = self._wrapped
        if not name or not has_triggers(types.FILE_DELETE, self.alias) or not wrapped.exists(name):
            return wrapped.delete(name)
        payload = self.describe(name, self.size_or_none(name), meta)
        intent = FileIntent.open(types.FILE_DELETE, self.alias, payload)
        if intent is None:
            return wrapped.delete(name)
        try:
            result = wrapped.delete(name)
        except Exception as exc:
            intent.failed(exc)
            raise
        intent.succeeded(payload)
        return result

    def describe(
        self, name: str, size: int | None, meta: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The `data` of a file event, as the wire format fixes it: ours, then Space Cloud's."""
        return {
            "storage": self.alias,
            "name": name,
            "size": size,
            "content_type": mimetypes.guess_type(name)[0],
            "url": self.url_or_none(name),
            **space_cloud_file_fields(name, meta),
        }

    def url_or_none(self, name: str) -> str | None:
        """The file's URL, or None for storages without URLs."""
        try:
            return self._wrapped.url(name)
        except Exception:  # noqa: BLE001 - no URL is a valid answer; it must not fail a save
            return None

    def size_or_none(self, name: str) -> int | None:
        """The stored file's size, or None when the storage cannot tell."""
        try:
            return self._wrapped.size(name)
        except Exception:  # noqa: BLE001 - the size is informative only
            return None

    # Everything else: passed through unchanged.

    def open(self, name, mode="rb"):
        """Open through the wrapped storage (writes through the file object emit nothing)."""
        return self._wrapped.open(name, mode)

    def _open(self, name, mode="rb"):
        return self._wrapped._open(name, mode)

    def exists(self, name):
        """Passed through."""
        return self._wrapped.exists(name)

    def listdir(self, path):
        """Passed through."""
        return self._wrapped.listdir(path)

    def size(self, name):
        """Passed through."""
        return self._wrapped.size(name)

    def url(self, name):
        """Passed through."""
        return self._wrapped.url(name)

    def path(self, name):
        """Passed through (raises NotImplementedError for storages without local paths)."""
        return self._wrapped.path(name)

    def get_valid_name(self, name):
        """Passed through."""
        return self._wrapped.get_valid_name(name)

    def get_alternative_name(self, file_root, file_ext):
        """Passed through."""
        return self._wrapped.get_alternative_name(file_root, file_ext)

    def get_available_name(self, name, max_length=None):
        """Passed through."""
        return self._wrapped.get_available_name(name, max_length=max_length)

    def is_name_available(self, name, max_length=None):
        """Passed through."""
        return self._wrapped.is_name_available(name, max_length=max_length)

    def generate_filename(self, filename):
        """Passed through."""
        return self._wrapped.generate_filename(filename)

    def get_accessed_time(self, name):
        """Passed through."""
        return self._wrapped.get_accessed_time(name)

    def get_created_time(self, name):
        """Passed through."""
        return self._wrapped.get_created_time(name)

    def get_modified_time(self, name):
        """Passed through."""
        return self._wrapped.get_modified_time(name)


def space_cloud_file_fields(name: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """Space Cloud's FileEventData: `meta` as passed, the absolute `path`, `type` "file"."""
    # Space Cloud's paths start at its store's root ("/avatars/a.png"); storage names don't.
    return {"meta": dict(meta or {}), "path": "/" + name.lstrip("/"), "type": "file"}


def content_size(content) -> int | None:
    """Size of the content about to be saved, when it can be told without reading it."""
    try:
        return content.size
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def check_options(backend: Any, options: Any, wraps: Any, alias: Any) -> None:
    """Refuse OPTIONS EventingStorage cannot work with, naming the option."""
    where = "EventingStorage OPTIONS"
    if (backend is None) == (wraps is None):
        raise ImproperlyConfigured(
            f"{where}: give exactly one of 'backend' (a storage class path) or 'wraps' "
            "(another alias in STORAGES)."
        )
    if backend is not None and not isinstance(backend, str):
        raise ImproperlyConfigured(f"{where}: 'backend' must be a dotted class path string.")
    if wraps is not None and not isinstance(wraps, str):
        raise ImproperlyConfigured(f"{where}: 'wraps' must be an alias in STORAGES.")
    if options is not None:
        if wraps is not None:
            raise ImproperlyConfigured(
                f"{where}: 'options' go with 'backend'; the storage named by 'wraps' has its "
                "own OPTIONS."
            )
        if not isinstance(options, dict):
            raise ImproperlyConfigured(f"{where}: 'options' must be a dict.")
    if alias is not None and not isinstance(alias, str):
        raise ImproperlyConfigured(f"{where}: 'alias' must be a string.")


def find_alias(storage_class: type, init_options: dict[str, Any]) -> str:
    """The one STORAGES alias configured with this class and exactly these OPTIONS."""
    found = []
    for alias, conf in (getattr(django_settings, "STORAGES", None) or {}).items():
        if (conf.get("OPTIONS") or {}) != init_options:
            continue
        try:
            backend = import_string(conf.get("BACKEND", ""))
        except ImportError:
            continue
        if backend is storage_class:
            found.append(alias)
    if len(found) == 1:
        return found[0]
    if not found:
        raise ImproperlyConfigured(
            "EventingStorage OPTIONS: this storage is not configured in settings.STORAGES; give "
            "'alias' (the storage alias its events and FILE triggers use)."
        )
    raise ImproperlyConfigured(
        f"EventingStorage OPTIONS: STORAGES aliases {', '.join(found)} have identical OPTIONS; "
        "give each an 'alias' option naming itself."
    )


def build_backend(backend: str, options: dict[str, Any], alias: str) -> Storage:
    """Instantiate the wrapped storage class from its path and options."""
    try:
        storage_class = import_string(backend)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"STORAGES[{alias!r}]['OPTIONS']['backend']: cannot import {backend!r}: {exc}"
        ) from exc
    return storage_class(**options)


def configuration_errors() -> list[str]:
    """Problems of every EventingStorage in settings.STORAGES, found without building one."""
    configured = getattr(django_settings, "STORAGES", None) or {}
    problems = []
    for alias, conf in configured.items():
        if not is_eventing_backend(conf.get("BACKEND", "")):
            continue
        options = dict(conf.get("OPTIONS") or {})
        unknown = sorted(set(options) - {"backend", "options", "wraps", "alias"})
        if unknown:
            problems.append(
                f"STORAGES[{alias!r}]['OPTIONS']: unknown option(s) {', '.join(unknown)}; "
                "EventingStorage takes backend, options, wraps and alias."
            )
            continue
        try:
            check_options(
                options.get("backend"),
                options.get("options"),
                options.get("wraps"),
                options.get("alias"),
            )
        except ImproperlyConfigured as exc:
            problems.append(f"STORAGES[{alias!r}]: {exc}")
            continue
        wraps = options.get("wraps")
        if wraps is not None:
            if wraps == alias:
                problems.append(f"STORAGES[{alias!r}]['OPTIONS']['wraps']: wraps itself.")
            elif wraps not in configured:
                problems.append(
                    f"STORAGES[{alias!r}]['OPTIONS']['wraps']: {wraps!r} is not an alias in "
                    "settings.STORAGES."
                )
            elif is_eventing_backend(configured[wraps].get("BACKEND", "")):
                problems.append(
                    f"STORAGES[{alias!r}]['OPTIONS']['wraps']: {wraps!r} is an EventingStorage "
                    "already; every event would be emitted twice."
                )
        else:
            try:
                import_string(options["backend"])
            except ImportError as exc:
                problems.append(
                    f"STORAGES[{alias!r}]['OPTIONS']['backend']: cannot import "
                    f"{options['backend']!r}: {exc}"
                )
    return problems


def is_eventing_backend(path: str) -> bool:
    """Whether a STORAGES BACKEND path names EventingStorage (or a subclass)."""
    try:
        backend = import_string(path)
    except ImportError:
        return False
    return isinstance(backend, type) and issubclass(backend, EventingStorage)
