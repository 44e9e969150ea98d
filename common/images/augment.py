"""Random views of images for self-supervised contrastive learning (SimCLR): two views of one image are a
positive pair, so the encoder learns to ignore whatever the views change and to keep what they share.

    view = augment(batch, generator)   # (B, 3, H, W) float in [0, 1] -> a random view of each, same shape

The views change pose (rotation, scale, shift, a mirror), lighting (brightness, contrast) and add pixel noise:
the ways two photos of one object differ. They keep the hue: SimCLR's colour jitter would teach the encoder
that a red and a blue object are alike, while colour is part of what makes two images similar here (the
graded relevance counts it). What the augmentations leave out is what the encoder is free to use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    rotation: float = math.pi  # radians either way
    scale: tuple[float, float] = (0.75, 1.35)  # zoom: above 1 crops in, below 1 shows more background
    shift: float = 0.2  # of the half-frame, either way
    brightness: tuple[float, float] = (0.7, 1.3)
    contrast: tuple[float, float] = (0.7, 1.3)
    noise: float = 0.04  # largest std of Gaussian pixel noise, on the 0..1 scale


def augment(images: torch.Tensor, generator: torch.Generator, spec: Augmentation = Augmentation()) -> torch.Tensor:
    """(B, 3, H, W) float32 in [0, 1] -> a random view of each image. One affine warp per image (bilinear,
    edges padded with the border's colour: a zoomed-out view shows more of the background, not black)."""
    n = len(images)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    angle = uniform(-spec.rotation, spec.rotation)
    zoom = uniform(*spec.scale)
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output coordinates to input ones: rotate, scale by 1/zoom, mirror x, shift.
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, uniform(-spec.shift, spec.shift)], dim=1),
            torch.stack([sin * mirror, cos, uniform(-spec.shift, spec.shift)], dim=1),
        ],
        dim=1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    views = (views - mean) * uniform(*spec.contrast).view(n, 1, 1, 1) + mean
    views = views * uniform(*spec.brightness).view(n, 1, 1, 1)
    sigma = uniform(0.0, spec.noise).view(n, 1, 1, 1)
    views = views + sigma * torch.randn(views.shape, generator=generator)
    return views.clamp(0.0, 1.0)
