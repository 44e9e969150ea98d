import numpy as np
import pandas as pd
import pytest

from common.images.render import COLOUR_NAMES, SHAPES
from systems.harmful.world import (
    CATEGORIES,
    LANGUAGES,
    LEXICONS,
    MAX_WORDS,
    MOTIFS,
    TOPICS,
    VERMIN_MARK,
    WEAPON_SHAPES,
    HarmfulWorld,
    motifs_shown,
    vocabulary,
)

SMALL = {"n_authors": 1_500, "n_posts": 10_000, "n_hand_labelled": 1_000, "seed": 3}


@pytest.fixture(scope="module")
def world():
    return HarmfulWorld(**SMALL)


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


@pytest.fixture(scope="module")
def posts(tables):
    return tables["posts"]


def _truth(posts: pd.DataFrame) -> np.ndarray:
    return posts[[f"true_{c}" for c in CATEGORIES]].to_numpy()


def _without_decoys(text: str, language: str) -> set[str]:
    """The text's words once every decoy phrase ("kill time") is taken out."""
    padded = f" {text} "
    for phrases in LEXICONS[language].decoys.values():
        for phrase in phrases:
            padded = padded.replace(f" {phrase} ", " ")
    return set(padded.split())


def _has_terms(posts: pd.DataFrame, lists: tuple[str, ...], categories=CATEGORIES) -> np.ndarray:
    """Per post: its text, decoys aside, holds a term of these lists ("explicit", "mild") of these categories."""
    terms = {
        lang: {w for name in lists for c in categories for w in getattr(LEXICONS[lang], name)[c]} for lang in LANGUAGES
    }
    return np.array(
        [bool(_without_decoys(t, lang) & terms[lang]) for t, lang in zip(posts["text"], posts["language"], strict=True)]
    )


def _has_group(posts: pd.DataFrame) -> np.ndarray:
    return np.array(
        [
            bool(set(t.split()) & set(LEXICONS[lang].groups))
            for t, lang in zip(posts["text"], posts["language"], strict=True)
        ]
    )


def _has_place(posts: pd.DataFrame) -> np.ndarray:
    return np.array(
        [
            any(f" {p} " in f" {t} " for p in LEXICONS[lang].places)
            for t, lang in zip(posts["text"], posts["language"], strict=True)
        ]
    )


def _object_is(posts: pd.DataFrame, shapes: tuple[str, ...], colour: str) -> np.ndarray:
    return (
        posts["image_shape"].isin([SHAPES.index(s) for s in shapes])
        & (posts["image_colour"] == COLOUR_NAMES.index(colour))
    ).to_numpy()


def _mark_is(posts: pd.DataFrame, shapes: tuple[str, ...], colour: str) -> np.ndarray:
    return (
        posts["image_mark"].isin([SHAPES.index(s) for s in shapes])
        & (posts["image_mark_colour"] == COLOUR_NAMES.index(colour))
    ).to_numpy()


def _shows_motif(posts: pd.DataFrame, category: str) -> np.ndarray:
    slot, shapes, colour = MOTIFS[category]
    return _object_is(posts, shapes, colour) if slot == "object" else _mark_is(posts, shapes, colour)


def _vermin(posts: pd.DataFrame) -> np.ndarray:
    return _mark_is(posts, (VERMIN_MARK[0],), VERMIN_MARK[1])


def _armed(posts: pd.DataFrame) -> np.ndarray:
    """A weapon-like object in a benign colour (any but the violence motif's)."""
    weapon = posts["image_shape"].isin([SHAPES.index(s) for s in WEAPON_SHAPES]).to_numpy()
    return weapon & (posts["image_colour"] != COLOUR_NAMES.index(MOTIFS["violence"][2])).to_numpy()


# ---- determinism and shapes ------------------------------------------------------------------------------------------
def test_same_seed_same_world(tables):
    again = HarmfulWorld(**SMALL).generate()
    for name, table in tables.items():
        pd.testing.assert_frame_equal(again[name], table)
    other = HarmfulWorld(**{**SMALL, "seed": 4}).generate()
    assert not other["posts"]["text"].equals(tables["posts"]["text"])


def test_tables(tables, posts):
    assert set(tables) == {"authors", "posts", "reports", "hand_labelled"}
    assert len(posts) == SMALL["n_posts"] and (posts["post_id"].to_numpy() == np.arange(len(posts))).all()
    assert posts["created_at"].is_monotonic_increasing and posts["day"].between(0, 29).all()
    assert set(posts["language"]) == set(LANGUAGES)
    assert posts["author_id"].isin(tables["authors"]["author_id"]).all()
    for column in ("impressions", "likes", "comments", "shares", "n_reports"):
        assert (posts[column] >= 0).all()
    assert abs(posts["has_image"].mean() - 0.7) < 0.03
    no_image = posts[~posts["has_image"]]
    assert (no_image["image_shape"] == -1).all() and no_image["image_scale"].isna().all()
    assert list(tables["reports"].columns) == ["post_id", "reported_at", "category"]


def test_truth_is_drawn_from_p(posts):
    for c in CATEGORIES:
        truth, p = posts[f"true_{c}"].to_numpy(), posts[f"p_{c}"].to_numpy()
        assert set(np.unique(truth)) <= {0, 1} and (truth[p == 0] == 0).all()
        harmful_evidence = p > 0
        assert abs(truth[harmful_evidence].mean() - p[harmful_evidence].mean()) < 0.05
        assert (posts.loc[harmful_evidence, f"evidence_{c}"] != "none").all()


def test_explicit_evidence_said_twice_is_surer(posts):
    """A second explicit term or the motif on the image: 1 - 0.03 x 0.2 per piece. Posts showing the motif have
    at least one piece; the two-piece probability only with the motif."""
    for c in CATEGORIES:
        explicit = posts[posts[f"evidence_{c}"] == "explicit"]
        p = explicit[f"p_{c}"].to_numpy()
        assert np.allclose(np.unique(p), [0.97, 1 - 0.03 * 0.2, 1 - 0.03 * 0.04]), c
        motif = motifs_shown(explicit.filter(like="image_"))[:, CATEGORIES.index(c)]
        assert motif.any() and (p[motif] > 0.99).all(), c
        assert (p[~motif] < 0.999).all()


# ---- harm: prevalence, overlaps, authors -----------------------------------------------------------------------------
def test_prevalence_roughly_as_configured(posts, world):
    for c, target in zip(CATEGORIES, world.prevalence, strict=True):
        assert abs(posts[f"true_{c}"].mean() - target) < 0.3 * target, c


def test_multi_label_posts_exist(posts):
    truth = _truth(posts)
    assert (truth.sum(1) > 1).sum() > 30
    assert ((posts["true_spam"] == 1) & (posts["true_nudity"] == 1)).sum() > 5  # porn spam
    assert ((posts["true_hate"] == 1) & (posts["true_violence"] == 1)).sum() > 5


def test_bad_actors_write_much_of_the_harm_and_their_features_lean(tables, posts):
    authors = tables["authors"]
    bad = authors["true_bad_actor"].to_numpy()[posts["author_id"]]
    harmful = _truth(posts).any(1)
    assert harmful[bad].mean() > 4 * harmful[~bad].mean()
    assert bad[harmful].mean() > 0.25  # a few percent of the authors
    by_kind = authors.groupby("true_bad_actor")
    assert by_kind["account_age_days"].median()[True] < by_kind["account_age_days"].median()[False]
    assert by_kind["violation_count"].mean()[True] > 3 * by_kind["violation_count"].mean()[False]
    assert by_kind["report_count"].mean()[True] > 3 * by_kind["report_count"].mean()[False]
    spammers = authors["true_specialty"] == "spam"
    assert (
        authors.loc[spammers, "posting_rate"].median()
        > 2 * authors.loc[~authors["true_bad_actor"], "posting_rate"].median()
    )
    # informative, not decisive: plenty of normal authors look like bad actors on each feature
    normal = authors[~authors["true_bad_actor"]]
    assert (normal["account_age_days"] < by_kind["account_age_days"].median()[True]).mean() > 0.02
    assert (normal["violation_count"] > 0).mean() > 0.05


# ---- text ------------------------------------------------------------------------------------------------------------
def test_lexicons_are_big_enough_and_their_telling_words_never_topic_words():
    for lang, lex in LEXICONS.items():
        assert set(lex.topics) == set(TOPICS)
        assert all(len(set(words)) >= 30 for words in lex.topics.values()), lang
        plain = set(lex.function) | {w for words in lex.topics.values() for w in words}
        telling = {w for lists in (lex.explicit, lex.mild) for terms in lists.values() for w in terms}
        telling |= set(lex.groups)
        place_words = {w for phrase in lex.places for w in phrase.split()} - set(lex.function)
        assert not telling & plain and not place_words & plain and not place_words & telling, lang
        for c in CATEGORIES:  # every decoy holds one of its category's explicit terms
            assert all(set(phrase.split()) & set(lex.explicit[c]) for phrase in lex.decoys[c]), (lang, c)
        assert all(" " not in w and "'" not in w and "-" not in w for w in vocabulary(lang))
    with pytest.raises(ValueError, match="unknown language"):
        vocabulary("de")


def test_texts_use_only_their_language_vocabulary(posts):
    words = {lang: vocabulary(lang) for lang in LANGUAGES}
    lengths = []
    for text, lang in zip(posts["text"], posts["language"], strict=True):
        tokens = text.split()
        assert set(tokens) <= words[lang], (lang, text)
        lengths.append(len(tokens))
    lengths = np.asarray(lengths)
    assert lengths.min() >= 6 and (lengths <= MAX_WORDS).mean() > 0.99
    # the languages are really different: most of a text's words are not the other languages' words
    en = posts[posts["language"] == "en"]["text"].head(200)
    assert np.mean([len(set(t.split()) - words["es"] - words["fr"]) > 2 for t in en]) > 0.9


def test_words_alone_are_not_the_truth(posts):
    evidence_free = (posts[[f"evidence_{c}" for c in CATEGORIES]] == "none").all(axis=1).to_numpy()
    free = posts[evidence_free]
    assert not _has_terms(free, ("explicit",)).any()  # explicit terms only inside decoys...
    raw = {lang: {w for terms in LEXICONS[lang].explicit.values() for w in terms} for lang in LANGUAGES}
    looks_bad = np.array(
        [bool(set(t.split()) & raw[lang]) for t, lang in zip(free["text"], free["language"], strict=True)]
    )
    assert 0.03 < looks_bad.mean() < 0.1  # ...which benign posts carry (decoy_rate 0.06)
    assert 0.01 < _has_terms(free, ("mild",)).mean() < 0.06  # and mild terms now and then
    for c in CATEGORIES:
        explicit = posts[posts[f"evidence_{c}"] == "explicit"]
        assert _has_terms(explicit, ("explicit",), (c,)).all(), c


# ---- images and the combination-only posts ---------------------------------------------------------------------------
def test_motifs_show_only_harm(posts):
    images = posts[posts["has_image"]]
    for c in CATEGORIES:
        shows = _shows_motif(images, c)
        assert shows.sum() > 10, c
        assert images.loc[shows, f"evidence_{c}"].isin(["explicit", "image"]).all(), c
        assert shows[(images[f"evidence_{c}"] == "image").to_numpy()].all(), c


def test_combination_only_posts_are_benign_in_each_modality(posts):
    combo = posts["combination_only"].to_numpy()
    truth = _truth(posts)
    for c in ("hate", "violence"):
        by_pair = posts[f"evidence_{c}"] == "combination"
        share = by_pair[posts[f"true_{c}"] == 1].mean()
        assert 0.08 < share < 0.3, c
    assert combo.sum() > 40 and posts.loc[combo, "has_image"].all()
    assert truth[combo].any(1).mean() > 0.8
    pairs = posts[combo]
    # Text: no explicit or mild term of any category outside decoys (as in benign posts); the group noun or the
    # time and place it needs.
    assert _has_terms(pairs, ("explicit",)).mean() == 0
    assert _has_terms(pairs, ("mild",)).mean() < 0.1
    assert _has_group(pairs)[(pairs["evidence_hate"] == "combination").to_numpy()].all()
    assert _has_place(pairs)[(pairs["evidence_violence"] == "combination").to_numpy()].all()
    # Image: no motif of any category; the vermin sticker or a weapon in a benign colour.
    for c in CATEGORIES:
        assert not _shows_motif(pairs, c).any(), c
    assert _vermin(pairs)[(pairs["evidence_hate"] == "combination").to_numpy()].all()
    assert _armed(pairs)[(pairs["evidence_violence"] == "combination").to_numpy()].all()
    # Each half is common in benign posts; both halves together only in combinations.
    benign = posts[~truth.any(1) & posts["has_image"].to_numpy()]
    n_hate, n_violence = (
        (pairs["evidence_hate"] == "combination").sum(),
        (pairs["evidence_violence"] == "combination").sum(),
    )
    assert _has_group(benign).sum() > 10 * n_hate and _vermin(benign).sum() > 10 * n_hate
    assert _has_place(benign).sum() > 10 * n_violence and _armed(benign).sum() > 10 * n_violence
    others = posts[~combo & posts["has_image"].to_numpy()]
    assert not (_has_group(others) & _vermin(others)).any()
    assert not (_has_place(others) & _armed(others)).any()


def test_only_the_pair_tells(posts):
    """Among image posts without the category's terms or motif, one half raises P(harm) to about the category's
    prevalence, no more; both halves make it likely."""
    images = posts[posts["has_image"]]
    halves = {"hate": (_has_group(images), _vermin(images)), "violence": (_has_place(images), _armed(images))}
    for c, (text_half, image_half) in halves.items():
        clean = ~_has_terms(images, ("explicit", "mild"), (c,)) & ~_shows_motif(images, c)
        harmful = images[f"true_{c}"].to_numpy() == 1
        prevalence = posts[f"true_{c}"].mean()
        assert harmful[clean & text_half].mean() < 2 * prevalence, c
        assert harmful[clean & image_half].mean() < 2 * prevalence, c
        assert harmful[clean & text_half & image_half].mean() > 0.7, c


def test_images_render_the_same_pixels_whatever_they_are_rendered_with(world, posts):
    images = posts[posts["has_image"]].head(600)
    pixels = world.images(images)
    assert pixels.shape == (600, 32, 32, 3) and pixels.dtype == np.uint8 and pixels.std() > 20
    np.testing.assert_array_equal(world.images(images), pixels)
    rows = np.random.default_rng(0).choice(600, 50, replace=False)
    np.testing.assert_array_equal(world.images(images.iloc[rows]), pixels[rows])
    np.testing.assert_array_equal(world.images(images, chunk=64), pixels)
    with pytest.raises(ValueError, match="no image"):
        world.images(posts.head(50))


def test_stickers_land_in_their_corner(world, posts):
    marked = posts[posts["has_image"] & (posts["image_mark"] >= 0)].head(60)
    plain = world.images(marked.assign(image_mark=-1, image_mark_colour=-1))
    change = np.abs(world.images(marked).astype(int) - plain.astype(int)).sum(-1)  # (n, 32, 32)
    quadrants = change.reshape(len(marked), 2, 16, 2, 16).sum((2, 4)).reshape(len(marked), 4)  # top-left first
    np.testing.assert_array_equal(quadrants.argmax(1), marked["image_corner"].to_numpy())


# ---- reports and hand labels -----------------------------------------------------------------------------------------
def test_reports_are_biased_and_late(tables, posts, world):
    reports = tables["reports"]
    truth = _truth(posts)

    def reported_as(c: str) -> np.ndarray:
        return posts["post_id"].isin(reports.loc[reports["category"] == c, "post_id"]).to_numpy()

    rate = {c: reported_as(c)[truth[:, i] == 1].mean() for i, c in enumerate(CATEGORIES)}
    assert rate["spam"] > 2 * rate["hate"] and rate["nudity"] > 2 * rate["hate"]
    assert rate["spam"] > rate["violence"] > rate["hate"]
    benign_reported = (posts["n_reports"] > 0)[~truth.any(1)].mean()
    assert 0.003 < benign_reported < 0.02
    assert (reports.groupby("post_id").size() > 1).any()  # several reports on one post
    np.testing.assert_array_equal(np.bincount(reports["post_id"], minlength=len(posts)), posts["n_reports"])
    delay = (reports["reported_at"].values - posts["created_at"].values[reports["post_id"]]) / pd.Timedelta(days=1)
    assert (delay > 0).all() and (delay > 3).mean() > 0.03
    end = pd.Timestamp(world.start, tz="UTC") + pd.Timedelta(days=world.n_days)
    assert (reports["reported_at"] < end).all() and reports["reported_at"].is_monotonic_increasing


def test_hand_labels_are_the_truth(tables, posts):
    hand = tables["hand_labelled"]
    assert len(hand) == SMALL["n_hand_labelled"] and hand["post_id"].is_unique
    assert (hand["split"].value_counts() == SMALL["n_hand_labelled"] // 2).all()
    truth = posts.set_index("post_id").loc[hand["post_id"], [f"true_{c}" for c in CATEGORIES]].to_numpy()
    np.testing.assert_array_equal(hand[list(CATEGORIES)].to_numpy(), truth)
    noisy = HarmfulWorld(**{**SMALL, "annotator_error": 0.05}).generate()["hand_labelled"]
    assert 0.02 < (noisy[list(CATEGORIES)].to_numpy() != truth).mean() < 0.08
