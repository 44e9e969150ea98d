import numpy as np
import pytest

from common.search.query import tokenise
from systems.video.world import GENRE_NAMES, GENRES, TAG_NAMES, TITLE_OPENERS
from systems.videosearch.world import CONCEPTS, MAX_QUERY_WORDS, PLACES, VIDEO_COLUMNS, VideoSearchWorld


@pytest.fixture(scope="module")
def world():
    return VideoSearchWorld(n_videos=2000, n_queries=6000, seed=3)


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


def _text_words(videos, row):
    video = videos.iloc[row]
    return set(tokenise(f"{video.title} {video.description} {' '.join(video.tags)}"))


def test_same_seed_same_world(tables):
    again = VideoSearchWorld(n_videos=2000, n_queries=6000, seed=3).generate()
    assert again["queries"].equals(tables["queries"])
    assert again["videos"].equals(tables["videos"])
    np.testing.assert_array_equal(again["frames"], tables["frames"])


def test_shapes(tables):
    videos, frames, queries = tables["videos"], tables["frames"], tables["queries"]
    assert list(videos.columns) == list(VIDEO_COLUMNS)
    assert frames.shape == (2000, 8, 64) and frames.dtype == np.float16 and np.isfinite(frames).all()
    assert list(queries.columns) == ["query_id", "text", "video_id", "split", "kind"]
    assert set(queries["split"]) == {"train", "validation", "test"}
    assert set(queries["kind"]) == {"text", "visual", "both"}
    assert queries["text"].map(lambda text: 1 <= len(tokenise(text)) <= MAX_QUERY_WORDS).all()


def test_concepts_and_places_are_words_the_catalogue_text_never_uses():
    catalogue = {w for text in TAG_NAMES + TITLE_OPENERS + GENRE_NAMES for w in tokenise(text)}
    catalogue |= {w for genre in GENRES.values() for noun in genre.nouns for w in tokenise(noun)}
    assert not catalogue & set(CONCEPTS) and not catalogue & set(PLACES) and not set(CONCEPTS) & set(PLACES)
    assert all(tokenise(place) == (place,) for place in PLACES)


def test_each_description_names_the_place_and_most_text_queries_do(tables):
    videos, queries = tables["videos"], tables["queries"]
    assert all(place.capitalize() in text for place, text in zip(videos["place"], videos["description"], strict=True))
    written = queries[queries["kind"] != "visual"]
    place = videos["place"].to_numpy()[written["video_id"].to_numpy()]
    names_it = [p in tokenise(text) for p, text in zip(place, written["text"], strict=True)]
    assert 0.7 < np.mean(names_it) < 0.9  # place_rate 0.8


def test_concepts_follow_the_genre_and_are_mentioned_at_the_configured_rate(world, tables):
    concepts, said = world.truth["video_concepts"], world.truth["concept_mentioned"]
    shown = concepts >= 0
    assert shown[:, 0].all() and said[~shown].sum() == 0
    assert abs(said[shown].mean() - world.mention_rate) < 0.03
    # A mentioned concept is in its video's text, an unmentioned one is not.
    for row in range(200):
        words = _text_words(tables["videos"], row)
        for concept, mentioned in zip(concepts[row][shown[row]], said[row][shown[row]], strict=True):
            assert (CONCEPTS[concept] in words) == mentioned
    cooking = tables["videos"]["genre"].to_numpy() == "cooking"
    assert (concepts[cooking] == CONCEPTS.index("kitchen")).any(1).mean() > 0.3
    assert (concepts[~cooking] == CONCEPTS.index("kitchen")).any(1).mean() < 0.1


def test_visual_queries_name_words_absent_from_their_video_text(world, tables):
    queries, videos = tables["queries"], tables["videos"]
    for query in queries[queries["kind"] == "visual"].head(300).itertuples():
        words = set(tokenise(query.text))
        assert not words & _text_words(videos, query.video_id)
        shown = {CONCEPTS[c] for c in world.truth["video_concepts"][query.video_id] if c >= 0}
        assert words <= shown
    for query in queries[queries["kind"] == "text"].head(300).itertuples():
        assert set(tokenise(query.text)) <= _text_words(videos, query.video_id)
    for query in queries[queries["kind"] == "both"].head(300).itertuples():
        words = set(tokenise(query.text))
        assert words & _text_words(videos, query.video_id) and words - _text_words(videos, query.video_id)


def test_oracle_on_hand_cases(world, tables):
    queries, videos = tables["queries"], tables["videos"]
    concepts = world.truth["video_concepts"]
    query = queries[queries["kind"] == "visual"].iloc[0]
    words = set(tokenise(query.text))
    holds = np.array(
        [words <= (_text_words(videos, v) | {CONCEPTS[c] for c in concepts[v] if c >= 0}) for v in range(len(videos))]
    )
    ids = np.full(len(videos), query.query_id)
    np.testing.assert_array_equal(
        world.relevance(ids, np.arange(len(videos))), holds | (videos.index == query.video_id)
    )
    (relevant,) = world.relevant_videos([query.query_id])
    np.testing.assert_array_equal(relevant, np.flatnonzero(holds))
    assert query.video_id in relevant
    # Every query's annotated video is relevant to it.
    assert world.relevance(queries["query_id"], queries["video_id"]).all()


def test_splits_are_by_query_text(tables):
    splits = tables["queries"].groupby("text")["split"].nunique()
    assert (splits == 1).all()
