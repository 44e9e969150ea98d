import numpy as np
import pandas as pd
import pytest

from common.app.config import load_config
from common.evaluation.metrics import auc
from systems.video.world import (
    AGE_RATINGS,
    COUNTRIES,
    GENRES,
    MINIMUM_AGE,
    START,
    VideoWorld,
    _top_k_per_row,
    positive_label,
)


@pytest.fixture(scope="module")
def tiny_config():
    return load_config("video", "tiny")


@pytest.fixture(scope="module")
def world(tiny_config):
    return VideoWorld(**tiny_config["world"])


@pytest.fixture(scope="module")
def tables(world):
    return world.generate()


@pytest.fixture(scope="module")
def joined(tables):
    """Impressions with their user's and video's attributes, the oracle and the label."""
    frame = tables.interactions.merge(tables.users, on="user_id").merge(tables.videos, on="video_id")
    frame = frame.sort_values("interaction_id").reset_index(drop=True)
    frame = frame.merge(tables.oracle, on="interaction_id")
    frame["positive"] = positive_label(frame)
    frame["video_age_days"] = (frame["event_timestamp"] - frame["upload_timestamp"]).dt.total_seconds() / 86400
    return frame


def test_same_seed_same_data(tiny_config, tables):
    again = VideoWorld(**tiny_config["world"]).generate()
    for name in ("users", "videos", "interactions", "oracle"):
        pd.testing.assert_frame_equal(getattr(tables, name), getattr(again, name))
    other = VideoWorld(**{**tiny_config["world"], "seed": 12}).generate()
    assert not tables.videos["genre"].equals(other.videos["genre"])
    assert not tables.interactions["clicked"].equals(other.interactions["clicked"])


def test_tables_are_shaped_like_the_chapter(world, tables):
    users, videos, imp = tables.users, tables.videos, tables.interactions
    assert list(users.columns) == ["user_id", "age", "gender", "country", "language", "signup_timestamp"]
    assert list(videos.columns) == [
        "video_id",
        "channel_id",
        "title",
        "genre",
        "language",
        "tags",
        "duration_s",
        "age_rating",
        "available_regions",
        "upload_timestamp",
    ]
    assert len(users) == world.n_users and len(videos) == world.n_videos
    assert all(
        2 <= len(tags) <= 4 and set(tags) <= set(GENRES[g].tags)
        for tags, g in zip(videos["tags"], videos["genre"], strict=True)
    )
    assert all(set(regions) <= set(COUNTRIES) for regions in videos["available_regions"])
    assert 0.8 < (videos["available_regions"].str.len() == 0).mean() < 0.95  # most videos are available everywhere
    assert set(videos["age_rating"]) == set(AGE_RATINGS)
    assert videos["title"].str.len().min() > 10
    # New videos and new users appear during the time axis (freshness, cold start).
    end = START + pd.Timedelta(days=world.n_days)
    assert 0.15 < videos["upload_timestamp"].between(START, end).mean() < 0.35
    assert (users["signup_timestamp"] > START).any()
    # Impressions: time-ordered, one slot per position of a request, engagement only after a click.
    assert imp["event_timestamp"].is_monotonic_increasing
    assert not imp.duplicated(["request_id", "position"]).any()
    assert imp["position"].between(1, world.n_slots).all()
    not_clicked = imp["clicked"] == 0
    assert (imp.loc[not_clicked, ["watch_fraction", "liked", "shared"]] == 0).all().all()
    assert imp.loc[~not_clicked, "watch_fraction"].between(0, 1).all()


def test_engagement_rates_are_realistic(joined):
    ctr = joined["clicked"].mean()
    assert 0.03 <= ctr <= 0.15
    clicks = joined[joined["clicked"] == 1]
    assert 0.2 <= clicks["positive"].mean() <= 0.6
    assert 0.03 <= clicks["liked"].mean() <= 0.25
    assert clicks["shared"].mean() < clicks["liked"].mean()
    # Long videos are watched less far.
    long_video = clicks["duration_s"] > clicks["duration_s"].median()
    assert clicks.loc[long_video, "watch_fraction"].mean() < clicks.loc[~long_video, "watch_fraction"].mean()


def test_popularity_is_long_tailed(world, tables):
    counts = tables.interactions["video_id"].value_counts().reindex(range(world.n_videos), fill_value=0)
    share = counts.sort_values(ascending=False).cumsum() / counts.sum()
    assert share.iloc[world.n_videos // 100 - 1] > 0.1  # the top 1% of videos: over 10x their share
    assert share.iloc[world.n_videos // 5 - 1] > 0.5  # the top 20%: over half of the impressions


def test_position_bias_is_visible(world, joined):
    by_position = joined.groupby("position")["clicked"].mean()
    assert by_position.iloc[0] > 1.5 * by_position.iloc[-1]
    ones = np.ones(world.n_slots, dtype=int)
    p = world.click_probability(0 * ones, 0 * ones, np.arange(1, world.n_slots + 1), 10.0 * ones)
    assert np.all(np.diff(p) < 0)


def test_fresh_videos_are_more_engaging_at_equal_relevance(world, joined):
    pair = np.zeros(2, dtype=int)
    fresh, old = world.click_probability(pair, pair, pair + 1, np.array([0.0, 30.0]))
    assert fresh > old
    # In the logs: clicks per examined impression, within bands of equal true relevance.
    frame = joined.assign(
        examined_clicks=joined["clicked"] / np.asarray(world.examination)[joined["position"] - 1],
        band=pd.qcut(joined["relevance"], 5, labels=False),
    )
    fresh_rate = frame[frame["video_age_days"] < 2].groupby("band")["examined_clicks"].mean()
    old_rate = frame[frame["video_age_days"] > 30].groupby("band")["examined_clicks"].mean()
    assert (fresh_rate > old_rate).all()


def test_impressions_respect_eligibility(world, joined):
    available = [
        not regions or country in regions
        for regions, country in zip(joined["available_regions"], joined["country"], strict=True)
    ]
    assert all(available)
    minimum_age = MINIMUM_AGE[joined["age_rating"].map(AGE_RATINGS.index).to_numpy()]
    assert (minimum_age <= joined["age"]).all()
    assert (joined["upload_timestamp"] < joined["event_timestamp"]).all()
    assert (joined["signup_timestamp"] < joined["event_timestamp"]).all()
    assert world.eligible(joined["user_id"].to_numpy(), joined["video_id"].to_numpy()).all()
    # The policy had restricted videos to skip.
    assert (joined["age"] < 18).any() and (joined["available_regions"].str.len() > 0).any()


def test_a_clicked_video_is_not_recommended_on_later_days(joined):
    day = (joined["event_timestamp"] - START).dt.days
    first_click_day = day[joined["clicked"] == 1].groupby([joined["user_id"], joined["video_id"]]).min().rename("first")
    later = joined.assign(day=day).join(first_click_day, on=["user_id", "video_id"], how="inner")
    assert (later["day"] <= later["first"]).all()


def test_oracle_relevance_is_the_probability_of_a_positive_click(joined):
    assert joined.loc[joined["positive"], "relevance"].mean() > joined.loc[~joined["positive"], "relevance"].mean()
    clicks = joined[joined["clicked"] == 1]
    assert auc(clicks["positive"].to_numpy().astype(int), clicks["relevance"].to_numpy()) > 0.7
    # Calibration: P(positive | click) per relevance decile, and P(positive | impression).
    for frame, column in ((clicks, "relevance"), (joined, "p_positive")):
        decile = pd.qcut(frame[column], 10, labels=False)
        by_decile = frame.groupby(decile).agg(observed=("positive", "mean"), expected=(column, "mean"))
        assert np.allclose(by_decile["observed"], by_decile["expected"], atol=0.06)


def test_top_relevant_is_the_best_of_the_eligible(world):
    users = np.arange(0, world.n_users, 97)
    as_of = START + pd.Timedelta(days=5)
    top = world.top_relevant(users, k=20, as_of=as_of)
    assert sorted(top) == users.tolist()
    rng = np.random.default_rng(0)
    for user, videos in top.items():
        assert len(videos) == 20
        repeated = np.full(len(videos), user)
        assert world.eligible(repeated, videos, at=as_of).all()
        relevance = world.relevance(repeated, videos)
        assert np.all(np.diff(relevance) <= 1e-6)  # best first
        # Exact: no eligible video outside the list is more relevant than its last item.
        every = np.arange(world.n_videos)
        everyone = np.full(world.n_videos, user)
        all_relevance = np.where(world.eligible(everyone, every, at=as_of), world.relevance(everyone, every), -1)
        assert np.sort(all_relevance)[-20] == pytest.approx(relevance[-1], abs=1e-5)
        random_eligible = rng.choice(np.flatnonzero(all_relevance >= 0), 20)
        assert relevance.mean() > all_relevance[random_eligible].mean()


def test_top_relevant_respects_time_and_chunking(world, monkeypatch):
    import systems.video.world as video_world

    users = np.array([3, 5, 5, 8])  # duplicates are answered once
    whole = world.top_relevant(users, k=500)
    monkeypatch.setattr(video_world, "ORACLE_CELLS", world.n_videos)  # one user per chunk
    chunked = world.top_relevant(users, k=500)
    assert sorted(whole) == [3, 5, 8]
    for user in whole:
        np.testing.assert_array_equal(whole[user], chunked[user])
    # Before the first new upload only back-catalogue videos are eligible.
    early = world.top_relevant(users, k=10, as_of=START)
    upload = world.truth["upload_s"]
    assert all((upload[videos] < 0).all() for videos in early.values())


def test_top_k_per_row_matches_a_full_sort():
    rng = np.random.default_rng(1)
    score = rng.random((7, 5000)).astype(np.float32)
    score[2] = -1.0  # a row with nothing eligible still answers k columns
    for k in (1, 10, 600, 5000):
        expected = np.argsort(-score, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(_top_k_per_row(score, k), expected)


def test_positive_label_known_answer():
    frame = pd.DataFrame({"liked": [0, 1, 0, 0, 1], "watch_fraction": [0.0, 0.1, 0.5, 0.49, 0.9]})
    assert positive_label(frame).tolist() == [False, True, True, False, True]


def test_default_scale_meets_the_issue_sizes():
    world = load_config("video", "default")["world"]
    assert world["n_videos"] >= 100_000 and world["n_users"] >= 50_000
    assert world["n_days"] * world["requests_per_day"] * VideoWorld.n_slots >= 2_000_000


def test_tastes_drift_only_after_the_logs_by_the_known_amount():
    """With drift the logs are the same; from the day after them (zero on that first day) each video's latent
    vector moves by drift_per_day a day along its genre's direction, and interest, relevance and P(click)
    follow."""
    size = {"n_users": 300, "n_videos": 400, "n_days": 4, "requests_per_day": 100}
    stable, drifting = VideoWorld(**size), VideoWorld(**size, drift_per_day=0.2)
    stable_tables, drifting_tables = stable.generate(), drifting.generate()
    pd.testing.assert_frame_equal(stable_tables.interactions, drifting_tables.interactions)
    pd.testing.assert_frame_equal(stable_tables.oracle, drifting_tables.oracle)
    users, videos = np.arange(300), np.arange(300) % 400
    for day in (0, drifting.n_days - 1, drifting.n_days):  # the logs' days and the first simulated day
        assert np.array_equal(drifting.interest(users, videos, day), stable.interest(users, videos))
    t, d, later = drifting.truth, drifting.latent_dim, drifting.n_days + 3
    moved = t["video_vector"][videos].copy()
    moved[:, :d] += 3 * 0.2 * t["genre_drift"][t["video_genre"][videos]]
    by_hand = np.einsum("nd,nd->n", t["user_vector"][users], moved)
    assert np.allclose(drifting.interest(users, videos, later), by_hand)
    assert not np.allclose(by_hand, stable.interest(users, videos))
    assert not np.allclose(drifting.relevance(users, videos, later), stable.relevance(users, videos))
    first, position, age = np.ones(300, int), np.ones(300, int), np.full(300, 5.0)
    assert np.allclose(
        drifting.click_probability(users, videos, position, age, drifting.n_days),
        stable.click_probability(users, videos, first, age),
    )
