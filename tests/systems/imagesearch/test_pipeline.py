"""Image search end to end at tiny scale: the world's photos -> PCA and the contrastive CNNs -> the metrics
against the oracle -> IVF-PQ with incremental additions -> the registry -> POST /imagesearch/search."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from common.images.files import encode_png
from common.tracking.runs import load_champion
from systems.imagesearch.evaluation import ORACLE
from systems.imagesearch.pipeline import SERVED, raw_dir
from tests.common.serving.fuzz import fuzz_every_operation

SYSTEM = "imagesearch"
METRICS = ["mrr", "recall_at_10", "precision_at_10", "map", "ndcg_at_10"]


@pytest.fixture(scope="module")
def images(trained) -> pd.DataFrame:
    return pd.read_parquet(raw_dir() / "images.parquet")


@pytest.fixture(scope="module")
def pixels(trained) -> np.ndarray:
    return np.load(raw_dir() / "pixels.npy")


def search(client, data: dict | None = None, files: dict | None = None) -> dict:
    response = client.post("/imagesearch/search", data=data, files=files)
    assert response.status_code == 200, response.text
    return response.json()


def png_upload(image: np.ndarray) -> dict:
    return {"image": ("query.png", encode_png(image), "image/png")}


def test_every_model_is_evaluated_below_the_oracle_and_the_champion_is_served(trained):
    test = trained["evaluation"]["test"]
    assert {"pca", "simclr", "clicks", "simclr_then_clicks", SERVED, ORACLE} <= set(test.index)
    for name in test.index.drop(ORACLE):
        for metric in METRICS:
            assert test.loc[name, metric] <= test.loc[ORACLE, metric] + 1e-9, (name, metric)
    assert test.loc[ORACLE, "mrr"] == 1.0 and test.loc[ORACLE, "map"] == 1.0
    validation = trained["metrics"]
    assert trained["champion"] == max(validation, key=lambda name: validation[name]["validation_map"])
    assert load_champion(SYSTEM).version == trained["champion_version"]


def test_learned_embeddings_find_the_object_far_more_often_than_chance(trained, images):
    """A random list finds one of an object's ~5 photos among ~3,000 images at rank 10 about 1% of the time."""
    test = trained["evaluation"]["test"]
    for name in ("pca", "simclr", "clicks", "simclr_then_clicks"):
        assert test.loc[name, "recall_at_10"] > 0.05, name


def test_the_index_compresses_and_finds_added_images_as_well_as_built_ones(trained):
    report = trained["index"]
    assert report.bytes_per_image < 0.5 * report.flat_bytes_per_image
    assert report.n_added > 0 and report.n_base > 0
    assert report.recall > 0.3
    assert report.recall_added > report.recall_base - 0.15
    assert len(report.rebuild) >= 2


def test_search_by_id_drops_the_query_private_images_and_near_copies(client, images, trained):
    copies = images[images["duplicate_of"] >= 0]
    public_copy = copies[~copies["private"] & ~images.loc[copies["duplicate_of"], "private"].to_numpy()].iloc[0]
    original = int(public_copy["duplicate_of"])
    body = search(client, {"image_id": str(original), "k": "50"})
    ids = [image["image_id"] for image in body["images"]]
    assert 0 < len(ids) <= 50 and original not in ids
    assert int(public_copy["image_id"]) not in ids  # the same photo again is no result
    assert not images.loc[ids, "private"].any()
    scores = [image["score"] for image in body["images"]]
    assert scores == sorted(scores, reverse=True) and max(scores) < trained["duplicate_threshold"]
    assert list(body["stages"]) == ["embedding", "nearest_neighbours", "re_ranking"]
    assert body["query"] == {"image_id": original, "upload_bytes": None}
    assert body["models"]["encoder"]["version"] == trained["champion_version"]


def test_an_upload_of_a_catalogue_photo_finds_its_object(client, images, pixels):
    """Uploading a catalogue photo (as PNG, then as JPEG at another size) finds other photos of its object."""
    public = images[~images["private"]]
    counts = public.groupby("object_id")["image_id"].transform("size")
    hits = 0
    chosen = public[counts >= 3].head(20)
    for row in chosen.itertuples():
        body = search(client, {"k": "10"}, png_upload(pixels[row.image_id]))
        found = images.loc[[image["image_id"] for image in body["images"]], "object_id"]
        hits += int((found == row.object_id).any())
    assert hits >= len(chosen) // 2
    buffer = io.BytesIO()
    Image.fromarray(pixels[chosen.iloc[0]["image_id"]]).resize((90, 70)).save(buffer, format="JPEG")
    body = search(client, {"k": "5"}, {"image": ("q.jpg", buffer.getvalue(), "image/jpeg")})
    assert body["query"]["upload_bytes"] == len(buffer.getvalue()) and list(body["stages"])[0] == "decode"


@pytest.mark.parametrize(
    ("data", "files", "field", "reason"),
    [
        ({"k": "5"}, None, "image", "exactly one"),
        ({"image_id": "1", "k": "5"}, {"image": ("a.png", b"x", "image/png")}, "image", "exactly one"),
        ({"k": "5"}, {"image": ("a.txt", b"hello, not an image", "text/plain")}, "image", "not an image"),
        ({"k": "5"}, {"image": ("a.png", b"", "image/png")}, "image", "empty"),
        ({"image_id": "-1"}, None, "image_id", ""),
        ({"image_id": "abc"}, None, "image_id", ""),
        ({"image_id": "1", "k": "0"}, None, "k", ""),
        ({"image_id": "1", "k": "51"}, None, "k", ""),
        ({"image_id": "1", "colour": "red"}, None, "colour", "unknown field"),
    ],
)
def test_bad_requests_are_422_with_the_reason(client, data, files, field, reason):
    response = client.post("/imagesearch/search", data=data, files=files)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(field in error["loc"] and reason in error["msg"] for error in detail), detail


def test_a_corrupt_or_huge_upload_is_422(client, pixels, config):
    png = encode_png(pixels[0])
    response = client.post("/imagesearch/search", files={"image": ("cut.png", png[: len(png) // 2], "image/png")})
    assert response.status_code == 422 and "corrupt" in response.text
    huge = b"\x89PNG" + b"\0" * (config["serving"]["max_upload_bytes"] + 1)
    response = client.post("/imagesearch/search", files={"image": ("big.png", huge, "image/png")})
    assert response.status_code == 422 and "limit" in response.text
    broken = b"--b\r\n[]--b--\r\n"  # a form whose parts cannot be parsed: Starlette's 400, answered as a 422
    response = client.post(
        "/imagesearch/search", content=broken, headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 422 and "The form is not valid" in response.text


def test_private_and_unknown_images_are_neither_searchable_nor_shown(client, images):
    private = int(images.loc[images["private"], "image_id"].iloc[0])
    response = client.post("/imagesearch/search", data={"image_id": str(private)})
    assert response.status_code == 422 and "no public image" in response.text
    assert client.get(f"/imagesearch/images/{private}.png").status_code == 404
    assert client.get(f"/imagesearch/images/{len(images)}.png").status_code == 404


def test_thumbnails_are_the_catalogue_pixels(client, images, pixels):
    public = int(images.loc[~images["private"], "image_id"].iloc[0])
    response = client.get(f"/imagesearch/images/{public}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.content))), pixels[public])
    samples = client.get("/imagesearch/samples", params={"n": 5}).json()
    assert len(samples) == 5 and not images.loc[samples, "private"].any()
    assert "<title>Image search</title>" in client.get("/imagesearch/").text


def test_schemathesis_finds_no_server_error_and_no_response_off_its_schema(client):
    """Requests generated from the schema, accepted and refused (tests/common/serving/fuzz.py)."""
    assert "POST /imagesearch/search" in fuzz_every_operation(client.app)
