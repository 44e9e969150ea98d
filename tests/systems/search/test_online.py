"""The product-search world on the online simulator (systems/search/online.py): reactions drawn from the world's
truth, policies through the served funnel, logs that become the next day's engagement features, A/B tests.

A tiny search training of its own: the simulated days are written into its Feast store and its MLflow
experiment, which the session's shared training must not see. It evaluates fewer judged queries and learns
from fewer pages than the tiny config's (this module reads none of its offline numbers), which halves the
training's time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

from common.app.config import load_config
from common.app.registry import get_system
from common.online.simulator import simulate
from common.tracking.runs import load_champion, trained_model_metrics
from systems.search.dataset import engagement_grade
from systems.search.features import engagement_as_of
from systems.search.online import IMPRESSION_COLUMNS, SEARCH_COLUMNS, TRUTH_COLUMNS, SearchOnline, online_system
from systems.search.queries import Intent, compose
from systems.search.serving import Filters, SearchService
from systems.search.vocabulary import CATEGORIES
from tests.conftest import data_dir_at
from tests.online_checks import assert_oracle_beats_random_and_champion_between, run_abtest_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPECS = {name: spec for category in CATEGORIES.values() for name, spec in category.types.items()}
ATTRIBUTES = {"brand": "product_brand", "color": "product_color", "material": "material", "size": "size"}


@pytest.fixture(scope="module")
def config():
    return load_config("search", "tiny")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, one_torch_thread):
    with data_dir_at(tmp_path_factory.mktemp("search-online")):
        lighter = {
            "evaluation": config["evaluation"] | {"queries": 30},
            "examples": config["examples"] | {"train_groups": 600, "validation_groups": 100},
        }
        get_system("search").train(config | lighter)
        yield config


@pytest.fixture(scope="module")
def three_policies(trained):
    """One simulated day of random scores, the champion and the oracle, users split in thirds; three times the
    tiny world's searches (333 a day), so that the champion's place between the two is not left to chance."""
    online = online_system(trained | {"online": trained["online"] | {"requests_per_day": 1000}})
    arms = ("random", "champion", "oracle")
    return online, simulate(online.world, lambda day: online.policies(arms), 1, "test-three", seed=0)


def test_the_policies_are_the_champion_each_ranker_the_baseline_random_and_the_oracle(three_policies):
    online, _ = three_policies
    assert online.names == ("champion", "lambdamart", "lightgbm", "bm25", "random", "oracle")
    assert online.baseline == "bm25"
    metric, goal = online.offline_metric
    assert (metric, goal) == ("validation_ndcg_at_10", "max")
    assert all(metric in values for values in trained_model_metrics("search").values())


def test_the_oracles_choices_beat_random_ones_and_the_champion_is_between(three_policies):
    assert_oracle_beats_random_and_champion_between(three_policies[1], "conversion_rate", "ctr")


def true_grades(tables: dict, events: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """The ESCI grade of each (intent, product) shown, from the tables and the vocabulary's declared relations:
    exact for the intent's type with every attribute it names, substitute for the type otherwise or a
    substitute type, complement for a complement type (either side declaring it), irrelevant otherwise; and
    the products' rows beside the events."""
    intent = tables["intents"].set_index("intent_id").loc[events["intent_id"]].reset_index(drop=True)
    product = tables["products"].set_index("product_id").loc[events["product_id"]].reset_index(drop=True)
    wanted, offered = intent["product_type"], product["product_type"]

    def related(kind: str) -> np.ndarray:
        pairs = {(a, b) for a, spec in SPECS.items() for b in getattr(spec, kind)}
        return np.array([(w, o) in pairs or (o, w) in pairs for w, o in zip(wanted, offered, strict=True)])

    fits = np.logical_and.reduce([(intent[a] == "") | (intent[a] == product[c]) for a, c in ATTRIBUTES.items()])
    same = (wanted == offered).to_numpy()
    grade = np.select([same & fits, same | related("substitutes"), related("complements")], [3, 2, 1], 0)
    return grade, product


def test_reactions_are_drawn_from_the_worlds_truth(three_policies):
    """Each product's P(click) and P(purchase) at its slot, recomputed here from the tables and the world's
    parameters: the slot examined with probability position^-0.7, a click by the grade, the rating (4.0 when
    unreviewed) and the price above the type's median, a dwell beyond 30 s (lognormal by grade), an add to cart
    of an available product, a purchase. Clicks, carts and purchases follow them; position bias shows."""
    from systems.search import world as w

    online, result = three_policies
    events = result.events.reset_index(drop=True)
    grade, product = true_grades(online.world.tables, events)
    assert (events["grade"] == grade).all()
    assert set(grade) == {0, 1, 2, 3}
    examined = events["position"].to_numpy(float) ** -0.7
    rating = product["rating"].fillna(4.0).to_numpy()
    median_price = product["product_type"].map(lambda t: SPECS[t].price).to_numpy()
    overpriced = np.maximum(0.0, np.log(product["price"].to_numpy() / median_price))
    clicks = expit(w.CLICK_LOGIT[grade] + 0.5 * (rating - 4.2) - 0.8 * overpriced)
    long_dwell = norm.sf((np.log(30.0) - np.log(w.DWELL_MEDIAN_SECONDS[grade])) / 0.8)
    p_cart = examined * clicks * long_dwell * product["available"].to_numpy() * w.CART_AFTER_LONG_DWELL[grade]
    assert np.allclose(events["p_click"], examined * clicks)
    assert np.allclose(events["p_purchase"], p_cart * 0.6)

    def within_3_sd(outcomes: pd.Series, p: np.ndarray) -> bool:  # a sum of Bernoullis against its mean
        return abs(outcomes.sum() - p.sum()) < 3 * np.sqrt((p * (1 - p)).sum())

    assert within_3_sd(events["clicked"], events["p_click"].to_numpy())
    assert within_3_sd(events["added_to_cart"], p_cart)
    assert within_3_sd(events["purchased"], events["p_purchase"].to_numpy())
    # Position bias: the top slots and the bottom ones each click as often as the truth says (without the bias
    # the bottom slots would click 3x more).
    for slots in ((1, 2), (6, 7, 8, 9, 10)):
        at = events["position"].isin(slots).to_numpy()
        assert within_3_sd(events.loc[at, "clicked"], events.loc[at, "p_click"].to_numpy()), slots
    bought = events["purchased"].to_numpy(bool)
    assert events.loc[bought, "added_to_cart"].all() and (events.loc[bought, "dwell_seconds"] > 30).all()
    assert (events.loc[~events["clicked"].to_numpy(bool), "dwell_seconds"] == 0).all()
    # What the oracle served beside each product: the truth at the top slot, best first.
    oracle = events[events["arm"] == "oracle"]
    assert np.allclose(oracle["served_score"], oracle["p_purchase"] / oracle["position"] ** -0.7)
    assert (oracle.groupby("search_id")["served_score"].diff().dropna() <= 0).all()


def test_the_days_logs_join_the_training_logs_and_reach_what_serving_reads(three_policies, config):
    """The day's searches (with a page or none) and impressions join the world's tables in their schema, the
    pipeline's logs hold them graded, and the online store the API reads counts them, new queries included."""
    online, result = three_policies
    world, fresh = online.world, online.world.world.generate()
    tables = world.tables
    for name in ("searches", "impressions"):
        assert list(tables[name].columns) == list(fresh[name].columns)
        assert (tables[name].dtypes == fresh[name].dtypes).all()  # the logs' own types
    day_searches = tables["searches"].iloc[len(fresh["searches"]) :].reset_index(drop=True)
    pd.testing.assert_frame_equal(day_searches, result.requests[list(SEARCH_COLUMNS)].reset_index(drop=True))
    day = tables["impressions"].iloc[len(fresh["impressions"]) :].reset_index(drop=True)
    expected = result.events[list(IMPRESSION_COLUMNS)].astype(fresh["impressions"].dtypes.to_dict())
    pd.testing.assert_frame_equal(day, expected.reset_index(drop=True))
    assert set(TRUTH_COLUMNS) <= set(result.events.columns) and not set(TRUTH_COLUMNS) & set(day.columns)

    logs = world.data.logs
    simulated = logs.iloc[len(logs) - len(day) :].reset_index(drop=True)
    queries = day_searches.set_index("search_id")["query"]
    assert (simulated["query"] == queries[day["search_id"]].to_numpy()).all()
    assert (simulated["grade"] == engagement_grade(day, config["labels"]["dwell_seconds"])).all()
    assert (simulated["grade"] == 4).sum() == day["purchased"].sum() > 0

    service = SearchService.load(config)  # what the API serves: the online store, the query keys
    served = service.engagement
    after = logs["timestamp"].max() + pd.Timedelta(seconds=1)
    counted = engagement_as_of(logs, served.keys, len(tables["products"]), after)
    np.testing.assert_array_equal(served.product_counts, counted.product_counts)
    assert served.product_counts[:, 0].sum() == len(logs)  # each impression once, the day's included
    new = set(simulated["query"]) - set(fresh["searches"]["query"])  # first typed on the simulated day, with a page
    assert new and (served.keys.keys(sorted(new)) >= 0).all()
    order = np.argsort(served.pair_rows.to_numpy()), np.argsort(counted.pair_rows.to_numpy())
    np.testing.assert_array_equal(served.pair_counts[order[0]], counted.pair_counts[order[1]])

    champion = online.policies(("champion",))["champion"]  # built afresh: reads the refreshed store
    by_hand = online.serve_model(load_champion("search"))  # the same ranker, put behind the funnel by hand
    for request in result.requests.head(20).to_dict("records"):
        page = champion(request)
        assert 0 < len(page["items"]) <= world.page_size
        assert np.array_equal(by_hand(request)["items"], page["items"])
        rows = service.search(request["query"], world.page_size, Filters())[0].rows
        assert np.array_equal(service.products.column("product_id").to_numpy()[rows], page["items"])


def test_abtest_command_plans_runs_and_logs_the_test(trained):
    run_abtest_command("search", "bm25", ("conversion_rate", "ctr", "revenue_per_search"))


def test_simulated_days_follow_the_logs(config):
    """The day after the logs: the logs' traffic, in time order, by the logs' shoppers (the most active search
    most), intents by popularity, each query one of its intent's phrasings."""
    online = SearchOnline(config, refresh_features=False)
    searches = online.arrivals(0, np.random.default_rng(0))
    logged = online.tables["searches"]
    first = pd.Timestamp(online.world.start) + pd.Timedelta(days=online.days_offset)
    assert online.days_offset == config["world"]["days"]
    assert len(searches) == len(logged) // config["world"]["days"] == online.requests_per_day
    assert searches["timestamp"].between(first, first + pd.Timedelta(days=1)).all()
    assert searches["timestamp"].is_monotonic_increasing
    assert searches["search_id"].min() == logged["search_id"].max() + 1 and searches["search_id"].is_unique
    activity = online.world.activity
    assert activity[searches["user_id"]].mean() > 1.5 * activity.mean()
    popularity = online.tables["intents"].set_index("intent_id")["popularity"]
    assert popularity[searches["intent_id"]].mean() > 3 * popularity.mean()
    intents = online.tables["intents"].set_index("intent_id")
    seeds = online.world._intents["query_seed"]
    for row in searches.head(100).itertuples():
        i = intents.loc[row.intent_id]
        said = Intent(i["category"], i["product_type"], i["brand"], i["color"], i["material"], i["size"])
        assert (row.query, row.clean_query) in {compose(said, flags, int(seeds[row.intent_id])) for flags in range(64)}


def test_the_metrics_count_each_search_once_with_or_without_a_page(three_policies, config):
    """Each arm's metrics from its own rows: purchases, carts, dwell and revenue per search (a search whose
    query matched nothing counts with nothing), clicks per product shown, and the share of searches with a
    dwell beyond T or an add to cart."""
    online, result = three_policies
    prices = online.world.tables["products"].set_index("product_id")["price"]
    for arm in result.arms:
        searches = (result.requests["arm"] == arm).sum()
        shown = result.events[result.events["arm"] == arm]
        purchased = shown["purchased"].astype(bool)
        successes = (shown["dwell_seconds"] > config["labels"]["dwell_seconds"]) | shown["added_to_cart"].astype(bool)
        expected = {
            "conversion_rate": purchased.sum() / searches,
            "ctr": shown["clicked"].mean(),
            "success_rate": successes.groupby(shown["search_id"]).any().sum() / searches,
            "add_to_cart_per_search": shown["added_to_cart"].sum() / searches,
            "dwell_per_search": shown["dwell_seconds"].sum() / searches,
            "revenue_per_search": prices[shown.loc[purchased, "product_id"]].sum() / searches,
        }
        for metric, value in expected.items():
            assert result.value(arm, metric) == pytest.approx(value), (arm, metric)
