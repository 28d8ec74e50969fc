"""Modules imported at their first use: a run whose clusters are all endpoints never loads the Kubernetes client
(about a quarter of a second of CPU at every start)."""

from __future__ import annotations

import importlib
from types import ModuleType


class ImportedOnUse(ModuleType):
    """Stands for module `name`; the first attribute read imports it (under import's own lock, so thread-safe)."""

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self.__name__), attr)


def imported_on_use(name: str) -> ModuleType:
    """`name`, imported when an attribute of it is first read, not now."""
    return ImportedOnUse(name)
