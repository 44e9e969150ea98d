"""A catalogue grown to a target size with synthetic items, to benchmark the served funnel at a
size the world does not have (1M videos; the issue allows synthetic item embeddings for it).

Each synthetic item copies a random real item's metadata (title included: it is a near-duplicate,
as re-uploads are, and de-duplication treats it so) and activity, and takes the real item's
embedding plus Gaussian noise, re-normalised: the ANN index, the ranking features and the
re-ranking rules all run over it as over real items.

    MLSD_CATALOG_SIZE=1000000 make serve SYSTEM=video
"""

from __future__ import annotations

import os

import numpy as np

from common.funnel.ranking_features import ItemCatalog

CATALOG_SIZE_ENV = "MLSD_CATALOG_SIZE"
NOISE = 0.5  # norm of the noise against the unit embedding: cosine ~0.9 to the item it copies
CHUNK = 200_000  # rows of noise drawn at a time (bounds the float64 temporaries)


def requested_size() -> int:
    value = os.environ.get(CATALOG_SIZE_ENV, "0")
    try:
        return int(value)
    except ValueError as error:
        raise ValueError(f"{CATALOG_SIZE_ENV} must be an integer, got {value!r}") from error


def pad_catalog(
    catalog: ItemCatalog, activity: dict[str, np.ndarray], size: int, seed: int = 0
) -> tuple[ItemCatalog, dict[str, np.ndarray]]:
    """The catalogue and its activity columns with synthetic items appended up to `size` rows
    (unchanged when it is already that large)."""
    n_new = size - len(catalog)
    if n_new <= 0:
        return catalog, activity
    rng = np.random.default_rng(seed)
    source = rng.integers(0, len(catalog), n_new)
    dim = catalog.vectors.shape[1]
    vectors = np.empty((n_new, dim), dtype=np.float32)
    for lo in range(0, n_new, CHUNK):
        rows = source[lo : lo + CHUNK]
        noisy = catalog.vectors[rows] + rng.standard_normal((len(rows), dim), dtype=np.float32) * (NOISE / dim**0.5)
        vectors[lo : lo + CHUNK] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    new_ids = catalog.item_ids.max() + 1 + np.arange(n_new, dtype=np.int64)
    columns = {name: np.concatenate([values, values[source]]) for name, values in catalog.columns.items()}
    columns["item_id"] = np.concatenate([catalog.item_ids, new_ids])
    padded = ItemCatalog(
        item_ids=columns["item_id"],
        columns=columns,
        schema=catalog.schema,
        vectors=np.concatenate([catalog.vectors, vectors]),
        groups=catalog.groups,
        group_codes=np.concatenate([catalog.group_codes, catalog.group_codes[source]]),
        release_s=columns["release_s"],
    )
    return padded, {name: np.concatenate([values, values[source]]) for name, values in activity.items()}
