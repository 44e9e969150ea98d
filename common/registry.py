"""The systems this project ships. Adding a system touches only this table."""

from __future__ import annotations

from importlib import import_module

from common.system import System

_SYSTEM_MODULES = {
    "ads": "systems.ads",
    "game": "systems.game",
    "video": "systems.video",
}


def system_names() -> list[str]:
    return sorted(_SYSTEM_MODULES)


def get_system(name: str) -> System:
    if name not in _SYSTEM_MODULES:
        raise KeyError(f"unknown system {name!r}; choose one of {system_names()}")
    return import_module(_SYSTEM_MODULES[name]).SYSTEM
