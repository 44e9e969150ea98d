"""The image-search world: photos of latent objects, rendered procedurally (common/images/render.py), with the
relevance of any (query, image) pair known exactly (the oracle), and a log of searches and clicks.

    python -c "from systems.imagesearch.world import *; print(ImageSearchWorld(2000).generate()['images'])"

Objects: a shape family (the category), a main colour, an accent colour, a texture and a background, drawn
uniformly. Each object has a few photos in the catalogue (on average `photos_per_object`), each under its own
pose, scale, crop, lighting and noise: alike to a person, different pixel by pixel.
Uploads: every catalogue photo is uploaded on a day of `n_days`; the index is built on the days before
`build_day` and the later uploads are added to it incrementally. Some uploads are private (never shown to
anyone else); some are near-copies of an earlier upload (the same photo re-uploaded, with new sensor noise and
a slightly different exposure), which the served results drop when they copy the query.
Queries: new photos of catalogue objects (a person photographs something and looks for it), split between
validation and test. Relevance is graded: 3 for the same object, 2 for the same shape and colour, 1 for the
same shape, 0 otherwise.
Logs: searches by other photos of catalogue objects, each shown `impressions` images by the previous system
(a mix of the query object's photos, look-alikes and random images, in random order), clicked with position
bias times an attractiveness that grows with the grade: the chapter's "interactions as a proxy" for positive
pairs, noisy (a same-shape click is no match) and sparse (most searches get one click or none).
After the logs (the online simulator, systems/imagesearch/online.py): more searches drawn as the logs' are
(`searches`), clicked by the same click model (`click_probability`), and new uploads every day (`uploads`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.images.render import COLOUR_NAMES, SHAPES, TEXTURES, Objects, Photos, render

GRADES = {"same object": 3, "same shape and colour": 2, "same shape": 1}
SPLITS = ("validation", "test")


@dataclass
class ImageSearchWorld:
    n_objects: int = 20_000
    photos_per_object: float = 5.0  # mean catalogue photos of an object (at least one each)
    n_days: int = 30
    build_day: int = 25  # uploads before this day are in the built index, later ones are added to it
    n_queries: int = 4_000  # judged query photos, half validation, half test
    n_searches: int = 30_000  # logged searches (impressions and clicks)
    impressions: int = 10  # images shown per logged search
    private_rate: float = 0.05
    duplicate_rate: float = 0.03  # of uploads: a near-copy of an earlier upload
    image_size: int = 32
    seed: int = 0
    # P(click) = position_bias ** position (0-based) * attractiveness[grade]
    position_bias: float = 0.85
    attractiveness: tuple[float, float, float, float] = (0.02, 0.08, 0.25, 0.7)
    objects: Objects = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.build_day <= self.n_days:
            raise ValueError(f"build_day must be in 1..n_days, got {self.build_day}")
        self._rng = np.random.default_rng(self.seed)
        self.objects = Objects.sample(self.n_objects, self._rng)

    def generate(self) -> dict:
        """{"images": the catalogue table, "pixels": its photos (n, s, s, 3) uint8, "queries" and "query_pixels":
        the judged query photos, "searches" and "search_pixels": the logged searches' query photos,
        "impressions": what each logged search showed and what was clicked}."""
        rng = self._rng
        images, image_photos = self._catalogue(rng)
        queries, query_photos = self._queries(rng, self.n_queries, with_split=True)
        searches, search_photos = self._queries(rng, self.n_searches, with_split=False)
        impressions = self._impressions(rng, images, searches)
        seed = self.seed * 3
        return {
            "images": images,
            "pixels": render(self.objects, image_photos, self.image_size, seed=seed),
            "queries": queries,
            "query_pixels": render(self.objects, query_photos, self.image_size, seed=seed + 1),
            "searches": searches,
            "search_pixels": render(self.objects, search_photos, self.image_size, seed=seed + 2),
            "impressions": impressions,
        }

    # ---- the catalogue --------------------------------------------------------------------------
    def _catalogue(self, rng: np.random.Generator) -> tuple[pd.DataFrame, Photos]:
        counts = 1 + rng.poisson(self.photos_per_object - 1, self.n_objects)
        object_rows = np.repeat(np.arange(self.n_objects), counts)
        photos = Photos.sample(object_rows, rng)
        n = len(object_rows)
        day = rng.integers(0, self.n_days, n)
        # Near-copies: an upload takes an earlier photo's pose and camera (its own sensor noise, a touch of
        # exposure), so it is a re-upload of that photo, not a new photo of the object.
        duplicate_of = np.full(n, -1, dtype=np.int64)
        candidates = np.flatnonzero(rng.random(n) < self.duplicate_rate)
        is_candidate = np.zeros(n, dtype=bool)
        is_candidate[candidates] = True
        by_object = pd.Series(np.arange(n)).groupby(object_rows).agg(list)
        for row in candidates:
            # An original is never itself a copy: no chains, so each copy takes its original's own pose.
            siblings = [s for s in by_object[object_rows[row]] if not is_candidate[s]]
            if siblings:
                duplicate_of[row] = siblings[int(rng.integers(len(siblings)))]
        copies = np.flatnonzero(duplicate_of >= 0)
        photos = _copy_poses(photos, copies, duplicate_of[copies], rng)
        day[copies] = np.maximum(day[copies], day[duplicate_of[copies]])  # a copy comes after its original
        private = rng.random(n) < self.private_rate
        return self._image_table(0, object_rows, day, private, duplicate_of), photos

    def _image_table(
        self, first_id: int, object_rows: np.ndarray, day: np.ndarray, private: np.ndarray, duplicate_of: np.ndarray
    ) -> pd.DataFrame:
        """The catalogue's rows: the photos' ids from `first_id`, what they show, when they were uploaded."""
        return pd.DataFrame(
            {
                "image_id": first_id + np.arange(len(object_rows), dtype=np.int64),
                "object_id": object_rows,
                "shape": np.asarray(SHAPES)[self.objects.shape[object_rows]],
                "colour": np.asarray(COLOUR_NAMES)[self.objects.colour[object_rows]],
                "texture": np.asarray(TEXTURES)[self.objects.texture[object_rows]],
                "day": day,
                "private": private,
                "duplicate_of": duplicate_of,
            }
        )

    # ---- after the logs: the days the online simulator runs ----------------------------------------
    @property
    def uploads_per_day(self) -> float:
        """The catalogue's mean uploads a day over the logs' days."""
        return self.n_objects * self.photos_per_object / self.n_days

    def uploads(self, rng: np.random.Generator, n: int, day: int, first_id: int) -> tuple[pd.DataFrame, np.ndarray]:
        """`n` photos uploaded on `day` (after the logs), ids from `first_id`: new photos of catalogue objects,
        drawn as the catalogue's are (pose and camera, private at the same rate), no re-uploads among them:
        (their rows of the images table, their pixels)."""
        object_rows = rng.integers(0, self.n_objects, n)
        photos = Photos.sample(object_rows, rng)
        private = rng.random(n) < self.private_rate
        table = self._image_table(first_id, object_rows, np.full(n, day), private, np.full(n, -1, dtype=np.int64))
        return table, render(self.objects, photos, self.image_size, seed=int(rng.integers(2**31)))

    def searches(self, rng: np.random.Generator, n: int, first_id: int) -> tuple[pd.DataFrame, np.ndarray]:
        """`n` more searches as the logs' are drawn (a new photo of a catalogue object each), ids from
        `first_id`: (their rows of the searches table, their query photos)."""
        table, photos = self._queries(rng, n, with_split=False)
        table["query_id"] += first_id
        return table, render(self.objects, photos, self.image_size, seed=int(rng.integers(2**31)))

    def _queries(self, rng: np.random.Generator, n: int, with_split: bool) -> tuple[pd.DataFrame, Photos]:
        object_rows = rng.integers(0, self.n_objects, n)
        table = pd.DataFrame({"query_id": np.arange(n, dtype=np.int64), "object_id": object_rows})
        if with_split:
            table["split"] = np.where(np.arange(n) % 2 == 0, SPLITS[0], SPLITS[1])
        return table, Photos.sample(object_rows, rng)

    # ---- relevance --------------------------------------------------------------------------------
    def grades(self, query_objects: np.ndarray, image_objects: np.ndarray) -> np.ndarray:
        """(n_queries, n_images) int8: 3 same object, 2 same shape and colour, 1 same shape, 0 otherwise."""
        return object_grades(self.objects, np.asarray(query_objects), np.asarray(image_objects))

    # ---- the logs -----------------------------------------------------------------------------------
    def _impressions(self, rng: np.random.Generator, images: pd.DataFrame, searches: pd.DataFrame) -> pd.DataFrame:
        """What the previous system showed each logged search (public images only) and the clicks."""
        public = images[~images["private"]]
        rows, objects = public["image_id"].to_numpy(), public["object_id"].to_numpy()
        shape, colour = self.objects.shape[objects], self.objects.colour[objects]
        same_object = _groups(objects)
        same_look = _groups(shape * len(COLOUR_NAMES) + colour)
        same_shape = _groups(shape)
        shown = np.empty((len(searches), self.impressions), dtype=np.int64)
        for i, target in enumerate(searches["object_id"].to_numpy()):
            t_shape, t_colour = self.objects.shape[target], self.objects.colour[target]
            pools = (
                (same_object.get(target, ()), 3),
                (same_look.get(t_shape * len(COLOUR_NAMES) + t_colour, ()), 3),
                (same_shape.get(t_shape, ()), 2),
            )
            picked: list[int] = []
            for pool, count in pools:
                if len(pool):
                    picked.extend(rng.choice(pool, size=min(count, len(pool)), replace=False).tolist())
            picked = list(dict.fromkeys(picked))
            while len(picked) < self.impressions:  # the rest at random
                extra = int(rng.integers(len(rows)))
                if extra not in picked:
                    picked.append(extra)
            shown[i] = rows[rng.permutation(np.asarray(picked[: self.impressions]))]
        n = len(searches)
        table = pd.DataFrame(
            {
                "search_id": np.repeat(searches["query_id"].to_numpy(), self.impressions),
                "image_id": shown.ravel(),
                "position": np.tile(np.arange(self.impressions), n),
            }
        )
        query_objects = np.repeat(searches["object_id"].to_numpy(), self.impressions)
        image_objects = images["object_id"].to_numpy()[table["image_id"]]
        grade = object_grades(self.objects, query_objects, image_objects, paired=True)
        table["clicked"] = rng.random(len(table)) < self.click_probability(grade, table["position"].to_numpy())
        table["grade"] = grade  # the truth, for analysis only: no model reads it
        return table

    def click_probability(self, grades: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The searcher's click model: P(click) of a shown image = position_bias ** position (0-based, the
        chance it is looked at) x the attractiveness of its grade (the chance a look becomes a click)."""
        return self.position_bias ** np.asarray(positions) * np.asarray(self.attractiveness)[grades]


def object_grades(objects: Objects, query_objects: np.ndarray, image_objects: np.ndarray, paired: bool = False):
    """Graded relevance of image objects to query objects: (n_queries, n_images) int8, or with `paired` the
    element-wise grades of two equal-length arrays."""
    q = query_objects if paired else query_objects[:, None]
    same_shape = objects.shape[q] == objects.shape[image_objects]
    same_colour = objects.colour[q] == objects.colour[image_objects]
    grade = same_shape.astype(np.int8) + (same_shape & same_colour) + (q == image_objects)
    return grade.astype(np.int8)


def _groups(keys: np.ndarray) -> dict[int, np.ndarray]:
    """Positions of each key's rows."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return {int(k): p for k, p in zip(sorted_keys[starts], np.split(order, starts[1:]), strict=True)}


def _copy_poses(photos: Photos, copies: np.ndarray, originals: np.ndarray, rng: np.random.Generator) -> Photos:
    """The photos with each copy's pose and camera taken from its original, exposure nudged by up to 5%."""
    fields = {name: np.array(getattr(photos, name)) for name in photos.__dataclass_fields__}
    for values in fields.values():
        values[copies] = values[originals]
    fields["brightness"][copies] *= rng.uniform(0.95, 1.05, len(copies)).astype(fields["brightness"].dtype)
    return Photos(**fields)
