"""Image search on "public data": a folder of image files, one sub-folder per class (DATA=/path), trained through
the real system at tiny scale and served. The folder has no clicks and no objects: relevant means the same class,
the click-trained encoders are skipped, and the results say where the data came from."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient

from common.app.config import load_config
from common.app.registry import get_system
from common.images.files import encode_png
from common.images.render import COLOUR_NAMES, SHAPES, Objects, Photos, render
from common.serving.app import create_app
from systems.imagesearch.corpus import folder_corpus
from systems.imagesearch.evaluation import ORACLE
from systems.imagesearch.pipeline import SERVED, raw_dir
from tests.conftest import data_dir_at

# Each class its own shape, main colour and background (accent, texture and pose vary): a tiny pipeline's
# two SimCLR epochs and PCA can tell them apart, so "above chance" is a check of the wiring, not of luck.
CLASSES = {"circle": ("circle", "red", 0), "star": ("star", "blue", 3), "cross": ("cross", "green", 5)}
CLASSES |= {"bar": ("bar", "yellow", 7)}
PER_CLASS = 40  # 160 images (a folder of 48 is tested too)
SIZE = 40
QUERY_SHARE = 0.2  # the config's folder.query_share


def _write_class_folders(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c, (name, (shape, colour, background)) in enumerate(CLASSES.items()):
        drawn = Objects.sample(per_class, rng, shapes=[SHAPES.index(shape)], colours=[COLOUR_NAMES.index(colour)])
        objects = Objects(drawn.shape, drawn.colour, drawn.accent, drawn.texture, np.full(per_class, background))
        images = render(objects, Photos.sample(np.arange(per_class), rng), size=SIZE, seed=seed + c)
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            (root / name / f"{i:02d}.png").write_bytes(encode_png(image))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny CNN and faiss's k-means run several times faster on one thread than on two cores shared with
    other test workers."""
    import faiss

    threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(faiss_threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """4 classes of PER_CLASS PNGs at 40x40, a text file (ignored) and a corrupt PNG (skipped)."""
    root = tmp_path_factory.mktemp("photos") / "shapes"
    _write_class_folders(root, PER_CLASS, seed=0)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "star" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")
    return root


@pytest.fixture(scope="module")
def own_data_dir(isolated_data_dir, tmp_path_factory):
    """This module's training writes under its own data dir: test_pipeline trains the world into the session's,
    and its registered champion and catalogue must not be replaced by the folder's."""
    with data_dir_at(tmp_path_factory.mktemp("imagesearch-folder-data")) as data:
        yield data


@pytest.fixture(scope="module")
def config(folder):
    config = load_config("imagesearch", "tiny")
    config["data"] = str(folder)
    return config


@pytest.fixture(scope="module")
def summary(own_data_dir, config):
    return get_system("imagesearch").train(config)


@pytest.fixture(scope="module")
def client(summary):
    with TestClient(create_app(["imagesearch"], "tiny")) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def images(summary) -> pd.DataFrame:
    return pd.read_parquet(raw_dir() / "images.parquet")


# --- training ---------------------------------------------------------------------------


def test_the_folder_trains_pca_and_simclr_but_no_click_model(summary):
    """A folder has no clicks: the two click-trained encoders of the config are skipped, not trained on nothing."""
    for split in ("validation", "test"):
        rows = set(summary["evaluation"][split].index)
        assert {"pca", "simclr", ORACLE} <= rows, split
        assert not rows & {"clicks", "simclr_then_clicks"}, split
    assert SERVED in summary["evaluation"]["test"].index
    assert set(summary["metrics"]) == {"pca", "simclr"}
    assert summary["champion"] in {"pca", "simclr"}


def test_the_oracle_finds_a_same_class_image_first(summary):
    for split in ("validation", "test"):
        oracle = summary["evaluation"][split].loc[ORACLE]
        assert oracle["mrr"] == 1.0 and oracle["map"] == 1.0 and oracle["precision_at_10"] == 1.0


def test_the_models_find_same_class_images_well_above_chance(summary):
    """Each class is a quarter of the catalogue: a random list's precision@10 is about 0.25."""
    test = summary["evaluation"]["test"]
    # Random lists: precision@10 about 0.25, MRR about 0.46 (the first hit's rank is geometric with p = 0.25).
    for name in ("pca", "simclr"):
        assert test.loc[name, "precision_at_10"] > 0.45, name
        assert test.loc[name, "mrr"] > 0.7, name


def test_the_served_path_keeps_the_champions_quality(summary):
    """IVF-PQ and the re-ranking rules (no private images, no near-copies in a folder) lose little of exact
    search's precision: a near-copy rule that dropped same-class images would show here."""
    test = summary["evaluation"]["test"]
    champion = test.loc[summary["champion"]]
    assert test.loc[SERVED, "precision_at_10"] > champion["precision_at_10"] - 0.15
    assert test.loc[SERVED, "mrr"] > champion["mrr"] - 0.15


def test_the_results_say_where_the_data_came_from(summary, folder):
    """160 decodable images, 8 of each class's 40 held out as queries: 128 in the catalogue, 32 queries."""
    assert f"Data: {folder}: 4 classes, 128 catalogue images, 32 queries" in summary["table"]
    assert "| simclr" in summary["table"] and "clicks" not in summary["table"]


def test_the_catalogue_written_for_serving_is_the_folders_decodable_images(images, folder):
    assert len(images) == 4 * PER_CLASS - round(QUERY_SHARE * PER_CLASS) * 4
    assert set(images["label"]) == set(CLASSES)
    assert (images["label"].value_counts() == PER_CLASS - round(QUERY_SHARE * PER_CLASS)).all()
    assert not images["file"].str.contains("broken|notes").any()
    assert all(
        (folder / file).is_file() and file.split("/")[0] == label for file, label in images[["file", "label"]].values
    )
    assert not images["private"].any() and (images["duplicate_of"] == -1).all()
    assert np.load(raw_dir() / "pixels.npy").shape == (len(images), 32, 32, 3)  # resized to the config's 32


# --- serving ------------------------------------------------------------------------------


def test_a_search_by_id_answers_with_labelled_images(client, images):
    response = client.post("/imagesearch/search", data={"image_id": "0", "k": "5"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == {"image_id": 0, "upload_bytes": None}
    found = body["images"]
    assert 0 < len(found) <= 5 and all(image["image_id"] != 0 for image in found)
    assert all(image["label"] in CLASSES for image in found)
    assert [image["label"] for image in found] == images.loc[[image["image_id"] for image in found], "label"].tolist()
    assert all(image["shape"] is None for image in found)  # a folder knows classes, not the world's objects


# --- folders that cannot be used --------------------------------------------------------------


def test_folder_corpus_refuses_a_single_class(tmp_path):
    root = tmp_path / "one"
    _write_class_folders(root, 6, seed=1)
    for name in list(CLASSES)[1:]:
        for path in (root / name).iterdir():
            path.unlink()
        (root / name).rmdir()
    with pytest.raises(ValueError, match="at least 2 class"):
        folder_corpus(str(root), 32, QUERY_SHARE, 0.1, seed=0)


def test_folder_corpus_refuses_classes_too_small_to_hold_out_a_query(tmp_path):
    """One image a class: it must stay in the catalogue to be found, so no query photo is left."""
    root = tmp_path / "singletons"
    _write_class_folders(root, 1, seed=1)
    with pytest.raises(ValueError, match="too few images to hold out query photos"):
        folder_corpus(str(root), 32, QUERY_SHARE, 0.1, seed=0)


def test_folder_corpus_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        folder_corpus(str(tmp_path / "nowhere"), 32, QUERY_SHARE, 0.1, seed=0)


def test_a_small_folder_of_48_images_trains(tmp_path):
    root = tmp_path / "small"
    _write_class_folders(root, 12, seed=2)
    config = load_config("imagesearch", "tiny")
    config["data"] = str(root)
    with data_dir_at(tmp_path / "data"):
        summary = get_system("imagesearch").train(config)
    assert summary["evaluation"]["test"].loc[ORACLE, "mrr"] == 1.0
