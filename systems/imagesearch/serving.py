"""The served image search (chapter section 7):

  decode                  an upload, with Pillow: checked (size, format, corrupt), RGB, centre-cropped, resized
  embedding generation    the champion encoder (registry: `imagesearch-ranker@champion`)
  nearest neighbours      IVF-PQ over the catalogue (data/imagesearch/index, memory-mapped)
  re-ranking              private images, the query itself and near-copies of it dropped
A search by image id embeds that catalogue image's pixels (data/imagesearch/raw/pixels.npy, memory-mapped:
the server's workers share one copy), so both kinds of query take the same path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.app.paths import system_dir
from common.app.system import ServiceUnavailable
from common.images.files import decode_image, encode_png
from common.retrieval.ann import ANNIndex
from common.serving.service import release_freed_memory
from common.serving.timing import StageTimer
from common.tracking.runs import Champion, ChampionMissing, load_champion
from systems.imagesearch.funnel import Found, SimilarImages
from systems.imagesearch.pipeline import SYSTEM, ServedImageSearch, raw_dir

TRAIN = f"run: make train SYSTEM={SYSTEM}"
SHOWN = ("shape", "colour", "texture", "label", "day")  # what the results say of an image, where present


class UnknownImage(LookupError):
    """No such image, or a private one: either way not one a searcher may use or see."""


def public_ids_in(path) -> list[int]:
    images = pd.read_parquet(path, columns=["image_id", "private"])
    return images.loc[~images["private"], "image_id"].tolist()


class ImageSearchService:
    def __init__(self, config: dict, champion: Champion, images: pd.DataFrame, pixels: np.ndarray):
        served: ServedImageSearch = champion.classifier
        if served.index_name is None:
            raise ServiceUnavailable(f"the champion {champion.name} v{champion.version} has no index: {TRAIN}")
        self.champion = champion
        self.encoder = served.encoder
        self.image_size = served.image_size
        self.pixels = pixels
        self.private = images["private"].to_numpy()
        self.shown = images[[c for c in SHOWN if c in images]].to_dict("records")
        self.max_upload_bytes = config["serving"]["max_upload_bytes"]
        index = ANNIndex.load(system_dir(SYSTEM) / "index" / served.index_name, mmap=True)
        self.similar = SimilarImages(index, self.private, served.duplicate_threshold, config["serving"]["candidates"])
        release_freed_memory()

    @classmethod
    def load(cls, config: dict, model: Champion | None = None) -> ImageSearchService:
        """The registered champion's served path over the catalogue files, or `model`'s (another encoder with
        its own index: an A/B test's challenger on the online simulator)."""
        folder = raw_dir()
        try:
            champion = model or load_champion(SYSTEM)
        except ChampionMissing as error:
            raise ServiceUnavailable(str(error)) from error
        if not (folder / "pixels.npy").exists():
            raise ServiceUnavailable(f"no {SYSTEM} catalogue at {folder}: {TRAIN}")
        pixels = np.load(folder / "pixels.npy", mmap_mode="r")
        return cls(config, champion, pd.read_parquet(folder / "images.parquet"), pixels)

    def visible(self, image_id: int) -> bool:
        return 0 <= image_id < len(self.private) and not self.private[image_id]

    def image(self, image_id: int) -> np.ndarray:
        if not self.visible(image_id):
            raise UnknownImage(f"no public image {image_id}")
        return np.asarray(self.pixels[image_id])

    def thumbnail(self, image_id: int) -> bytes:
        return encode_png(self.image(image_id))

    def search_by_id(self, image_id: int, k: int) -> tuple[Found, dict[str, float]]:
        timer = StageTimer()
        with timer.stage("embedding"):
            vector = self.encoder.encode(self.image(image_id)[None])
        return self.similar.search(vector, k, query_id=image_id, timer=timer), timer.milliseconds

    def search_by_upload(self, data: bytes, k: int) -> tuple[Found, dict[str, float]]:
        """Raises common.images.files.ImageRejected (the reason) for a file that is no usable image."""
        timer = StageTimer()
        with timer.stage("decode"):
            image = decode_image(data, self.image_size, max_bytes=self.max_upload_bytes)
        with timer.stage("embedding"):
            vector = self.encoder.encode(image[None])
        return self.similar.search(vector, k, timer=timer), timer.milliseconds

    def describe(self, found: Found) -> list[dict]:
        pairs = zip(found.ids, found.scores, strict=True)
        return [{"image_id": int(i), "score": float(s), **self.shown[i]} for i, s in pairs]
