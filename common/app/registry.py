"""The systems this project ships. Each system registers itself as an entry point of the group
`mlsd.systems` (pyproject.toml), the standard Python plugin mechanism: common/ never names one."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from common.app.system import System

ENTRY_POINT_GROUP = "mlsd.systems"


@cache
def _entry_points() -> dict:
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def system_names() -> list[str]:
    return sorted(_entry_points())


def get_system(name: str) -> System:
    points = _entry_points()
    if name not in points:
        raise KeyError(f"unknown system {name!r}; choose one of {system_names()}")
    system = points[name].load()
    if not isinstance(system, System) or system.name != name:
        raise TypeError(f"entry point {name!r} of {ENTRY_POINT_GROUP} must be a System named {name!r}")
    return system
