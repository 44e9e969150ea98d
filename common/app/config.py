"""System configuration: one YAML per system under configs/, with named world scales."""

from __future__ import annotations

from typing import Any

import yaml

from common.app.paths import CONFIG_DIR


def load_config(system: str, scale: str | None = None) -> dict[str, Any]:
    """The system's config at one scale: `world` holds that scale's world parameters, and any other
    section the scale names (models, periods...) is merged over the top-level one, key by key."""
    path = CONFIG_DIR / f"{system}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no config for system {system!r} at {path}")
    config = yaml.safe_load(path.read_text())
    scale = scale or config["scale"]
    scales = config.pop("scales")
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r} for {system}; choose one of {sorted(scales)}")
    config["scale"] = scale
    config["world"] = dict(scales[scale]["world"], seed=config["seed"])
    for section, overrides in scales[scale].items():
        if section != "world":  # a section is merged key by key, a single value (threads: 1) replaced
            base = config.get(section, {})
            config[section] = _merged(base, overrides) if isinstance(overrides, dict) else overrides
    return config


def _merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied recursively: a nested dict is merged, anything else replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (
            _merged(base.get(key, {}), value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged
