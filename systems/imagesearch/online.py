"""Image search on the online simulator (common/online/simulator.py): the chapter's online metrics, measured on
the world's searchers after the logs the encoders trained on. The system stands alone (as systems/ads/online.py
does): its served path is the embedding, the IVF-PQ index and the re-ranking rules (serving.py, funnel.py).

  arrivals   a day's searches, drawn as the logs' are by the world's own generator (`ImageSearchWorld.searches`):
             a new photo of a catalogue object each, the world's traffic a day (its logged searches over its
             days). The world has no searchers apart from their searches: each search is a unit of the split
             (`search_id`), as each is its own visit. The request carries the photo's object, which only the
             oracle reads. The day's uploads are drawn too (`ImageSearchWorld.uploads`: new photos of catalogue
             objects, private at the catalogue's rate), the catalogue's mean a day
  policies   the served path (serving.ImageSearchService: the query photo uploaded as a PNG, decoded, embedded,
             the IVF-PQ index's nearest neighbours, private images and near-copies dropped), with
               champion            the registered encoder and its index (`imagesearch-ranker@champion`)
               <model name>        any encoder of the latest training, through an index built as the training
                                   builds the champion's (the uploads before the build day, the later ones
                                   added) and its own near-copy threshold; `pca` (raw pixels + PCA, the
                                   offline table's baseline) is the online baseline
               random              a random direction in place of the query's embedding, through the
                                   champion's index and rules: images that have nothing to do with the photo
               oracle              the world's grades in place of the embedding: the best public images of the
                                   whole catalogue so far (every same-object photo, then same shape and colour,
                                   then same shape; ties in random order), no index
             each shows the world's `impressions` (10) images, as the logs' system did, and logs the score it
             served beside them (`served_score`: the inner product; the oracle's grade)
  reactions  the world's click model, as in the logs (`ImageSearchWorld.click_probability`): P(click) =
             position_bias ** position x attractiveness[grade], the grade from the objects (3 same object, 2
             same shape and colour, 1 same shape); logged as rows of the impressions table, with the truth they
             were drawn from (p_click) beside them
  end of day the day's searches, their photos and their impressions join the logs the click-pair training
             reads (`corpus()` is the next training's corpus); the day's uploads join the catalogue files
             serving reads (data/imagesearch/raw) and, embedded by each served encoder, their indexes
             incrementally (ANNIndex.add, no rebuild): the next day's searches can find them
  metrics    clicks per search (the primary: the chapter's engagement with the suggested images), CTR (clicks
             per image shown), the success rate (searches with a click), the mean true grade of the images
             shown. The chapter's time spent on images has no counterpart: the world's searchers only click.

The simulation starts from what the training left: the catalogue files are written again from the world and
the champion's index loses an earlier simulation's uploads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch

from common.app.paths import system_dir
from common.images.files import encode_png
from common.online.simulator import Metric, OnlineSystem, Policy
from common.retrieval.ann import ANNIndex
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.imagesearch.corpus import Corpus, world_corpus
from systems.imagesearch.indexing import build_with_uploads
from systems.imagesearch.pipeline import SYSTEM, ServedImageSearch, duplicate_threshold, write_raw
from systems.imagesearch.serving import ImageSearchService
from systems.imagesearch.world import ImageSearchWorld, object_grades

log = logging.getLogger(__name__)
BASELINE = "pca"
METRICS = {
    "clicks_per_search": Metric("clicks", "searches", "clicks per search: engagement with the suggested images"),
    "ctr": Metric("clicks", "impressions", "clicks per image shown (the chapter's CTR)"),
    "success_rate": Metric("clicked_searches", "searches", "share of searches with at least one click"),
    "mean_grade": Metric("grades", "impressions", "the true grade (0-3) of the images shown"),
}
IMPRESSION_COLUMNS = ("search_id", "image_id", "position", "clicked", "grade")  # the logs' impressions table
TRUTH_COLUMNS = ("p_click",)  # logged beside each image shown, never part of the logs


class ImageSearchOnline:
    """The image-search world after the logs: its searches and uploads a day, and the searchers' clicks."""

    unit = "search_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_serving: bool = True):
        if config.get("data"):
            raise ValueError("the online simulator runs on the world: a folder of images has no searchers")
        self.config = config
        self.world = ImageSearchWorld(**config["world"], image_size=config["image_size"])
        self.tables = self.world.generate()  # the logs and the catalogue the encoders trained on (same seed)
        self.days_offset = self.world.n_days
        self.slots = self.world.impressions
        online = config["online"]
        self.requests_per_day = online["requests_per_day"] or round(self.world.n_searches / self.world.n_days)
        self.uploads_per_day = online["uploads_per_day"] or round(self.world.uploads_per_day)
        self._next_search = len(self.tables["searches"])
        self._today: dict | None = None  # the day's searches and uploads, until its end
        self._indexes: dict[str, tuple[object, ANNIndex]] = {}  # index name -> (its encoder, the index)
        self.serving = refresh_serving
        if self.serving:  # serving reads the catalogue as the training left it, whatever ran before
            write_raw(self.corpus())
            self.served(load_champion(SYSTEM))

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        searches, photos = self.world.searches(rng, self.requests_per_day, self._next_search)
        first_image = len(self.tables["images"])
        uploads, pixels = self.world.uploads(rng, self.uploads_per_day, self.days_offset + day, first_image)
        self._today = {"searches": searches, "search_pixels": photos, "images": uploads, "pixels": pixels}
        self._next_search += len(searches)
        return searches.rename(columns={"query_id": "search_id"})

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n, shown = len(shown), np.asarray(shown, dtype=np.int64)
        positions = np.arange(n)
        grades = self.grades(int(request["object_id"]), shown)
        p_click = self.world.click_probability(grades, positions)
        return {
            "search_id": np.full(n, request["search_id"], dtype=np.int64),
            "image_id": shown,
            "position": positions,
            "clicked": rng.random(n) < p_click,
            "grade": grades,
            "p_click": p_click,
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        per_search = events.groupby("search_id")
        totals = pd.DataFrame(
            {
                "clicks": per_search["clicked"].sum(),
                "impressions": per_search.size(),
                "clicked_searches": per_search["clicked"].any(),
                "grades": per_search["grade"].sum(),
            }
        )
        asked = requests.groupby(self.unit).size().rename("searches")
        return totals.reindex(asked.index, fill_value=0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The day's searches and impressions join the logs; its uploads join the catalogue files and every
        served index (embedded by the index's encoder, added without a rebuild)."""
        today, tables = self._today, self.tables
        impressions = events[list(IMPRESSION_COLUMNS)].astype(tables["impressions"].dtypes.to_dict())
        self.tables = tables | {
            "searches": pd.concat([tables["searches"], today["searches"]], ignore_index=True),
            "search_pixels": np.concatenate([tables["search_pixels"], today["search_pixels"]]),
            "impressions": pd.concat([tables["impressions"], impressions], ignore_index=True),
            "images": pd.concat([tables["images"], today["images"]], ignore_index=True),
            "pixels": np.concatenate([tables["pixels"], today["pixels"]]),
        }
        self._today = None
        ids = today["images"]["image_id"].to_numpy()
        if self.serving:  # the files first: an index never names an image the catalogue lacks
            write_raw(self.corpus())
            for name, (encoder, index) in self._indexes.items():
                index.add(ids, encoder.encode(today["pixels"]))
                _save_replacing(index, index_path(name))
        log.info("imagesearch: day %d joined the logs (%d impressions, %d uploads)", day, len(events), len(ids))

    # ---- the truth, for the reactions and the oracle ---------------------------------------------
    def grades(self, query_object: int, image_ids: np.ndarray) -> np.ndarray:
        """The world's grade of each catalogue image for a photo of `query_object`."""
        image_objects = self.tables["images"]["object_id"].to_numpy()[image_ids]
        return object_grades(self.world.objects, np.full(len(image_ids), query_object), image_objects, paired=True)

    def query_photo(self, search_id: int) -> np.ndarray:
        """A search of the day's query photo (s, s, 3) uint8: what the searcher uploads."""
        return self._today["search_pixels"][search_id - int(self._today["searches"]["query_id"].iloc[0])]

    # ---- what serving reads ----------------------------------------------------------------------
    def corpus(self) -> Corpus:
        """The catalogue and the logs so far as the training reads them: a next training's corpus."""
        return world_corpus(self.world, self.tables)

    def served(self, model: Champion) -> Champion:
        """`model` with an index over the catalogue so far, kept up to date at each day's end: the champion's
        own (the training's, without an earlier simulation's uploads), or for an encoder the training indexed
        not, one built the training's way under data/imagesearch/index/online-<name>."""
        bundle: ServedImageSearch = model.classifier
        if bundle.index_name is None:
            corpus = self.corpus()
            vectors = bundle.encoder.encode(corpus.pixels)
            threshold, _ = duplicate_threshold(self.config, corpus, vectors)
            bundle = replace(bundle, index_name=f"online-{model.name}", duplicate_threshold=threshold)
            if bundle.index_name not in self._indexes:
                base = corpus.images["day"].to_numpy() < corpus.build_day
                queries = bundle.encoder.encode(corpus.query_pixels[corpus.split("test")])
                index = build_with_uploads(self.config, vectors, base, queries)[0]
                self._keep(bundle, index)
        elif bundle.index_name not in self._indexes:
            index = ANNIndex.load(index_path(bundle.index_name))
            n = len(self.tables["images"])
            index.faiss_index.remove_ids(faiss.IDSelectorRange(n, np.iinfo(np.int64).max))
            self._keep(bundle, index)
        return replace(model, classifier=bundle)

    def _keep(self, bundle: ServedImageSearch, index: ANNIndex) -> None:
        if index.ntotal != len(self.tables["images"]):
            raise ValueError(f"index {bundle.index_name} holds {index.ntotal} images, the catalogue has more")
        _save_replacing(index, index_path(bundle.index_name))
        self._indexes[bundle.index_name] = (bundle.encoder, index)


def index_path(name: str) -> Path:
    return system_dir(SYSTEM) / "index" / name


def _save_replacing(index: ANNIndex, path: Path) -> None:
    """The index saved beside its path, then renamed over it: a service still mapping the old file keeps it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    index.save(temporary)
    os.replace(temporary.with_name(temporary.name + ".json"), path.with_name(path.name + ".json"))
    os.replace(temporary, path)


def online_system(config: dict, refresh_serving: bool = True) -> OnlineSystem:
    """The image-search world on the simulator, and its policies by name (encoders are loaded once; the
    services are built afresh each day, over the catalogue files and indexes the day before left)."""
    online = ImageSearchOnline(config, refresh_serving)
    models: dict[str, Champion] = {}
    rng = np.random.default_rng([config["seed"], 2])

    def model(name: str) -> Champion:
        if name not in models:
            loaded = load_champion(SYSTEM) if name == "champion" else load_trained_model(SYSTEM, name)
            models[name] = online.served(loaded)
        return models[name]

    def policy(name: str) -> Policy:
        if name == "oracle":
            return _oracle_policy(online, rng)
        service = ImageSearchService.load(config, model("champion" if name == "random" else name))
        return _random_policy(service, online, rng) if name == "random" else _served_policy(service, online)

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        return _one_thread({name: policy(name) for name in names})

    def serve_model(encoder: Champion) -> Policy:
        return _one_thread(_served_policy(ImageSearchService.load(config, online.served(encoder)), online))

    names = ("champion", *trained_model_names(SYSTEM), "random", "oracle")
    offline = (config["champion"]["metric"], config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _one_thread(built):
    """As the server does: one query photo's embedding and ANN search on one thread (loading an index resets
    faiss's threads; intra-op threads only spin against each other on a busy machine, 3 ms a search at tiny
    scale becoming tens)."""
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    return built


def _served_policy(service: ImageSearchService, online: ImageSearchOnline) -> Policy:
    """The served path as a policy: the request's photo uploaded as a PNG, as the page uploads it."""

    def policy(request: dict) -> dict[str, np.ndarray]:
        upload = encode_png(online.query_photo(int(request["search_id"])))
        found, _ = service.search_by_upload(upload, online.slots)
        return {"items": found.ids, "served_score": found.scores}

    return policy


def _random_policy(service: ImageSearchService, online: ImageSearchOnline, rng: np.random.Generator) -> Policy:
    """A random unit vector in place of the query's embedding, through the same index and rules."""
    dim = service.similar.index.dim

    def policy(request: dict) -> dict[str, np.ndarray]:
        vector = rng.normal(size=(1, dim)).astype(np.float32)
        found = service.similar.search(vector / np.linalg.norm(vector), online.slots)
        return {"items": found.ids, "served_score": found.scores}

    return policy


def _oracle_policy(online: ImageSearchOnline, rng: np.random.Generator) -> Policy:
    """The world's grades in the embedding's place, over every public image of the catalogue so far."""
    public = online.tables["images"].loc[lambda t: ~t["private"], "image_id"].to_numpy()

    def policy(request: dict) -> dict[str, np.ndarray]:
        grades = online.grades(int(request["object_id"]), public)
        best = np.lexsort((rng.random(len(public)), -grades))[: online.slots]
        return {"items": public[best], "served_score": grades[best].astype(np.float64)}

    return policy
