"""The catalogue grown with synthetic items for benchmarks (common.bench.padding)."""

import numpy as np
import pytest

from common.bench.padding import CATALOG_SIZE_ENV, pad_catalog, requested_size
from common.data.dataset import Schema
from common.funnel.ranking_features import ItemCatalog

SCHEMA = Schema(item_name="thing", group_column="genre", item_categorical=("genre",))


def small_catalog(n: int = 20, dim: int = 8) -> tuple[ItemCatalog, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(100, 100 + n, dtype=np.int64)
    genres = np.array(["a", "b"] * (n // 2), dtype=object)
    columns = {"item_id": ids, "title": np.array([f"t{i}" for i in range(n)], dtype=object), "genre": genres}
    catalog = ItemCatalog(
        item_ids=ids,
        columns=columns,
        schema=SCHEMA,
        vectors=vectors,
        groups=["a", "b"],
        group_codes=(genres == "b").astype(np.int64),
        release_s=ids * 10,
    )
    return catalog, {"item_engaged_window": np.arange(n, dtype=float)}


def test_grows_to_the_size_with_copies_of_real_items():
    catalog, activity = small_catalog()
    padded, padded_activity = pad_catalog(catalog, activity, size=500, seed=1)
    assert len(padded) == 500 and len(padded_activity["item_engaged_window"]) == 500
    assert np.array_equal(padded.item_ids[:20], catalog.item_ids) and len(np.unique(padded.item_ids)) == 500
    assert padded.rows(padded.item_ids[[0, 250, 499]]).tolist() == [0, 250, 499]  # ids stay sorted: binary search
    np.testing.assert_allclose(np.linalg.norm(padded.vectors, axis=1), 1.0, rtol=1e-5)
    # Each synthetic item copies one real item (named by its title, unique among the real ones): its
    # metadata, activity and release, and a vector near that item's.
    source = np.array([int(title[1:]) for title in padded.columns["title"][20:]])
    cosine = np.einsum("nd,nd->n", padded.vectors[20:], catalog.vectors[source])
    assert cosine.mean() > 0.8 and cosine.min() > 0.4
    assert np.array_equal(padded_activity["item_engaged_window"][20:], activity["item_engaged_window"][source])
    assert np.array_equal(padded.release_s[20:], catalog.release_s[source])
    assert np.array_equal(padded.group_codes[20:], catalog.group_codes[source])


def test_a_catalogue_already_that_large_is_unchanged():
    catalog, activity = small_catalog()
    assert pad_catalog(catalog, activity, size=10) == (catalog, activity)


def test_requested_size_reads_the_environment(monkeypatch):
    monkeypatch.delenv(CATALOG_SIZE_ENV, raising=False)
    assert requested_size() == 0
    monkeypatch.setenv(CATALOG_SIZE_ENV, "1000000")
    assert requested_size() == 1_000_000
    monkeypatch.setenv(CATALOG_SIZE_ENV, "a million")
    with pytest.raises(ValueError, match=CATALOG_SIZE_ENV):
        requested_size()
