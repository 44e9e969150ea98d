"""System configuration: one YAML per system under configs/, with named world scales."""

from __future__ import annotations

from typing import Any

import yaml

from common.paths import CONFIG_DIR


def load_config(system: str, scale: str | None = None) -> dict[str, Any]:
    """The system's config with `world` set to the chosen scale's parameters."""
    path = CONFIG_DIR / f"{system}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no config for system {system!r} at {path}")
    config = yaml.safe_load(path.read_text())
    scale = scale or config["scale"]
    worlds = config["worlds"]
    if scale not in worlds:
        raise ValueError(f"unknown scale {scale!r} for {system}; choose one of {sorted(worlds)}")
    config["scale"] = scale
    config["world"] = dict(worlds[scale], seed=config["seed"])
    return config
