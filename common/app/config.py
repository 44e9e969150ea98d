"""System configuration: one YAML per system under configs/, with named world scales."""

from __future__ import annotations

from typing import Any

import yaml

from common.app.paths import CONFIG_DIR


def load_config(system: str, scale: str | None = None) -> dict[str, Any]:
    """The system's config at one scale: `world` holds that scale's world parameters and
    `models` the model settings with that scale's overrides applied."""
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
    for model, overrides in scales[scale].get("models", {}).items():
        config["models"][model] = {**config["models"].get(model, {}), **overrides}
    return config
