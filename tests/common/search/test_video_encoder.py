import pickle

import numpy as np
import pytest
import torch

from common.search.query import tokenise
from common.search.video_encoder import VideoTextEncoder
from systems.videosearch.world import VideoSearchWorld

K = 10


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    world = VideoSearchWorld(n_videos=2000, n_queries=12000, seed=1)
    tables = world.generate()
    train = tables["queries"][tables["queries"]["split"] == "train"]
    encoder = VideoTextEncoder(epochs=8, batch_size=256).fit(
        train["text"].tolist(), tables["frames"], (np.arange(len(train)), train["video_id"].to_numpy())
    )
    return world, tables, encoder


def _recall_at_k(top: np.ndarray, relevant: list[np.ndarray]) -> float:
    return float(np.mean([np.isin(row, r).sum() / min(K, len(r)) for row, r in zip(top, relevant, strict=True)]))


def test_finds_what_only_the_frames_show(trained):
    world, tables, encoder = trained
    queries = tables["queries"]
    test = queries[(queries["split"] == "test") & (queries["kind"] == "visual")]
    relevant = world.relevant_videos(test["query_id"].to_numpy())

    scores = encoder.encode_texts(test["text"].tolist()) @ encoder.encode_videos(tables["frames"]).T  # (q, videos)
    encoder_recall = _recall_at_k(np.argsort(-scores, axis=1)[:, :K], relevant)

    # Text-only baseline: words shared with the title, ties broken at random.
    titles = [set(tokenise(title)) for title in tables["videos"]["title"]]
    rng = np.random.default_rng(0)
    overlap = np.array([[len(set(tokenise(text)) & title) for title in titles] for text in test["text"]])
    title_top = np.argsort(-(overlap + rng.random(overlap.shape) / 2), axis=1)[:, :K]
    title_recall = _recall_at_k(title_top, relevant)
    random_recall = float(np.mean([len(r) / len(titles) for r in relevant]))

    assert len(test) > 100
    assert encoder_recall > 5 * random_recall
    assert encoder_recall > title_recall + 0.3
    assert 1 <= encoder.best_epoch_ <= 8


def test_unit_vectors(trained):
    _, tables, encoder = trained
    texts = encoder.encode_texts(["dog park", "kitchen", "dog park", ""])
    videos = encoder.encode_videos(tables["frames"][:50])
    assert texts.dtype == videos.dtype == np.float32
    assert texts.shape == (4, encoder.dim) and videos.shape == (50, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(texts[:3], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(videos, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(texts[0], texts[2])


def test_pickle_round_trip(trained):
    _, tables, encoder = trained
    again = pickle.loads(pickle.dumps(encoder))
    np.testing.assert_array_equal(again.encode_texts(["sunset ocean"]), encoder.encode_texts(["sunset ocean"]))
    np.testing.assert_array_equal(
        again.encode_videos(tables["frames"][:20]), encoder.encode_videos(tables["frames"][:20])
    )


def test_unfitted_and_bad_pairs():
    with pytest.raises(RuntimeError):
        VideoTextEncoder().encode_texts(["dog"])
    with pytest.raises(ValueError):
        VideoTextEncoder().fit(["dog"], np.zeros((2, 8, 4)), (np.array([0]), np.array([0, 1])))
