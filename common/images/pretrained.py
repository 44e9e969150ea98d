"""The pretrained image encoder: the small CNN of common/models/image_encoder.py taught to name what photos show
(object, colour, texture, background, a corner sticker) on the labelled photo set of common/images/labelled.py,
the stand-in for the ImageNet model a team would download (none can be had on these machines). It never sees a
system's data or a label of harm. Measured against the alternatives (systems/harmful/README.md): a CNN trained
end to end on a system's natural labels, or self-supervised (SimCLR), kept too little of a small corner sticker
for any model to use it.

    encoder = pretrained_image_encoder(spec, size=32, seed=13)  # spec: a config's `image_encoder` section
    make pretrain-image-encoder                                 # python -m common.images.pretrained --system harmful

Pretraining is done once and its weights ship with the code (spec["weights"]: weights/, a few hundred KB), as
all-MiniLM-L6-v2's ship in their package: a system loads them in a second instead of spending minutes of every
training on them, and a stronger encoder than one training's time allows can be shipped. `make
pretrain-image-encoder` makes the file again from the spec's settings. With `weights: null` a system pretrains
its own encoder in its run instead.

The file records the settings it was made with (SETTINGS, the image size and the seed): loading it for a spec that
asks for others is refused with what to run, so an edited config cannot silently read an older encoder.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from common.app.config import load_config
from common.app.paths import REPO_ROOT
from common.images.labelled import CLASSES, labelled_photos
from common.models.image_encoder import ImageEncoder

log = logging.getLogger(__name__)

SETTINGS = ("dim", "width", "pooling", "photos", "epochs", "learning_rate", "cosine_decay")


def pretrained_image_encoder(spec: dict, size: int, seed: int) -> ImageEncoder:
    """The encoder in spec["weights"] (a path from the repository's root), checked against the spec's settings;
    without weights, one pretrained now."""
    if spec.get("weights") is None:
        return pretrain(spec, size, seed)
    path = REPO_ROOT / spec["weights"]
    if not path.exists():
        raise FileNotFoundError(f"no pretrained image encoder at {path}: run `make pretrain-image-encoder`")
    encoder = ImageEncoder.load(path)
    made_with, wanted = encoder.provenance_.get("settings"), _settings(spec, size, seed)
    if made_with != wanted:
        raise ValueError(
            f"the image encoder at {path} was pretrained with {made_with}, the config asks for {wanted}:"
            " run `make pretrain-image-encoder` (or set image_encoder.weights to null to pretrain in the run)"
        )
    return encoder


def pretrain(spec: dict, size: int, seed: int) -> ImageEncoder:
    """The CNN trained on spec["photos"] labelled photos of size x size pixels: one head per label of CLASSES."""
    started = time.perf_counter()
    images, labels = labelled_photos(spec["photos"], size=size, seed=seed)
    encoder = ImageEncoder(
        dim=spec["dim"],
        width=spec["width"],
        input_size=size,
        pooling=spec["pooling"],
        epochs=spec["epochs"],
        learning_rate=spec["learning_rate"],
        cosine_decay=spec["cosine_decay"],
        random_state=seed,
    )
    encoder.fit_labelled(images, labels, CLASSES)
    log.info("image encoder pretrained on %d labelled photos in %.0fs", len(images), time.perf_counter() - started)
    return encoder


def _settings(spec: dict, size: int, seed: int) -> dict:
    return {key: spec[key] for key in SETTINGS} | {"image_size": size, "seed": seed}


def save_pretrained(spec: dict, size: int, seed: int) -> Path:
    """Pretrain the encoder spec asks for and write it to spec["weights"], with the settings it was made with."""
    started = time.perf_counter()
    encoder = pretrain(spec, size, seed)
    provenance = {
        "settings": _settings(spec, size, seed),
        "made_by": "make pretrain-image-encoder (common/images/pretrained.py)",
        "seconds": round(time.perf_counter() - started),
        "best_epoch": encoder.best_epoch_,
    }
    path = REPO_ROOT / spec["weights"]
    encoder.save(path, provenance)
    log.info("wrote %s (%d KB)", path, path.stat().st_size // 1024)
    return path


def main(argv: list[str] | None = None) -> Path:
    """Pretrain the encoder a system's config names and write it where the config says."""
    parser = argparse.ArgumentParser(description="Pretrain the image encoder a system reads, and save its weights.")
    parser.add_argument("--system", default="harmful", help="the config whose image_encoder section to follow")
    args = parser.parse_args(argv)
    config = load_config(args.system)
    if config["image_encoder"].get("weights") is None:
        raise SystemExit(f"configs/{args.system}.yaml sets no image_encoder.weights: nothing to write")
    return save_pretrained(config["image_encoder"], config["image_size"], config["seed"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
