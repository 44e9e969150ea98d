"""What the image-search pipeline trains and evaluates on, from the world or from a folder of real images.

    corpus = world_corpus(ImageSearchWorld(...))    # graded relevance, uploads by day, private images, clicks
    corpus = folder_corpus("/path/to/images", ...)  # one sub-folder per class: relevant = the same class

A folder of real images (the layout image datasets commonly ship in, read with Pillow) has no logs and no
objects: a share of each class's images become the query photos (half validation, half test), an image is
relevant to a query when it is of the same class, and the last `added_share` of the catalogue stands for the
uploads after the index was built. No click pairs: the click-trained encoders are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.images.files import read_image_folder
from systems.imagesearch.world import SPLITS, ImageSearchWorld, object_grades

GradeFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (query rows, image rows), broadcast -> int8


@dataclass
class Corpus:
    images: pd.DataFrame  # image_id (= row), day, private, duplicate_of, and what the page shows of it
    pixels: np.ndarray  # (n_images, s, s, 3) uint8
    queries: pd.DataFrame  # query_id (= row), split
    query_pixels: np.ndarray
    grades: GradeFunction  # graded relevance of image rows to query rows, element-wise with broadcasting
    build_day: int  # images uploaded before this day are in the built index; later ones are added to it
    click_pairs: tuple[np.ndarray, np.ndarray] | None  # (search_pixels rows, image rows) of clicked results
    search_pixels: np.ndarray | None
    source: str  # what it came from, for the results
    relevance: str  # what relevant means, for the results

    def split(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.queries["split"].to_numpy() == name)


def world_corpus(world: ImageSearchWorld, tables: dict | None = None) -> Corpus:
    """The world's corpus: its generated tables, or `tables` in their form (the online simulator's, grown by
    the simulated days' uploads and logged searches, which a next training then reads)."""
    tables = world.generate() if tables is None else tables
    images, queries, impressions = tables["images"], tables["queries"], tables["impressions"]
    clicks = impressions[impressions["clicked"]]
    query_objects, image_objects = queries["object_id"].to_numpy(), images["object_id"].to_numpy()

    def grades(query_rows: np.ndarray, image_rows: np.ndarray) -> np.ndarray:
        return object_grades(world.objects, query_objects[query_rows], image_objects[image_rows], paired=True)

    return Corpus(
        images=images,
        pixels=tables["pixels"],
        queries=queries,
        query_pixels=tables["query_pixels"],
        grades=grades,
        build_day=world.build_day,
        click_pairs=(clicks["search_id"].to_numpy(), clicks["image_id"].to_numpy()),
        search_pixels=tables["search_pixels"],
        source=f"the world: {world.n_objects} objects, {len(images)} photos, {len(clicks)} clicks",
        relevance="new photos of catalogue objects; relevant: the same object (nDCG: graded, 3 same object, 2 same"
        " shape and colour, 1 same shape)",
    )


def folder_corpus(root: str, image_size: int, query_share: float, added_share: float, seed: int) -> Corpus:
    folder = read_image_folder(root, image_size)
    rng = np.random.default_rng(seed)
    is_query = np.zeros(len(folder.labels), dtype=bool)
    for label in np.unique(folder.labels):
        rows = rng.permutation(np.flatnonzero(folder.labels == label))
        if len(rows) >= 2:  # a class keeps at least one catalogue image to be found
            is_query[rows[: max(1, min(len(rows) - 1, round(query_share * len(rows))))]] = True
    catalogue, query_rows = np.flatnonzero(~is_query), np.flatnonzero(is_query)
    if len(query_rows) < 2:
        raise ValueError(f"{root}: too few images to hold out query photos (each class needs at least two)")
    later = rng.random(len(catalogue)) < added_share
    classes = np.asarray(folder.classes)
    images = pd.DataFrame(
        {
            "image_id": np.arange(len(catalogue), dtype=np.int64),
            "label": classes[folder.labels[catalogue]],
            "file": np.asarray(folder.files)[catalogue],
            "day": later.astype(np.int64),
            "private": np.zeros(len(catalogue), dtype=bool),
            "duplicate_of": np.full(len(catalogue), -1, dtype=np.int64),
        }
    )
    order = rng.permutation(len(query_rows))
    queries = pd.DataFrame(
        {
            "query_id": np.arange(len(query_rows), dtype=np.int64),
            "split": np.where(order % 2 == 0, SPLITS[0], SPLITS[1]),
            "label": classes[folder.labels[query_rows]],
        }
    )
    query_labels, image_labels = folder.labels[query_rows], folder.labels[catalogue]

    def grades(q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(query_labels[q] == image_labels[rows], 3, 0).astype(np.int8)

    return Corpus(
        images=images,
        pixels=folder.images[catalogue],
        queries=queries,
        query_pixels=folder.images[query_rows],
        grades=grades,
        build_day=1,
        click_pairs=None,
        search_pixels=None,
        source=f"{root}: {len(folder.classes)} classes, {len(catalogue)} catalogue images, {len(query_rows)} queries",
        relevance="held-out images of each class; relevant: the same class",
    )
