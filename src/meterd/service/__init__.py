"""The service layer: orchestration every surface calls (validation, store calls, keys, metrics hooks)."""

from meterd.service.meterd import Meterd

__all__ = ["Meterd"]
