"""Public import path of the storage wrapper (`eventing.storage.EventingStorage` in STORAGES)."""

from eventing.capture.storage import EventingStorage

__all__ = ["EventingStorage"]
