"""Product search on the online simulator (common/online/simulator.py): the chapter's online metrics, measured
on the world's shoppers after the logs the models trained on. The search funnel is its own (query
understanding, BM25 and the two-tower, fusion, two ranking stages: systems/search/serving.py), so this world
stands alone, as systems/events/online.py does.

  arrivals   the world's searches of a day after the logs' last one, drawn by the function that drew the logs'
             (ProductWorld.day_searches): shoppers by their activity (the logs' own draw of it), hours by the
             daily curve, an intent by its popularity, and the query its shopper types for it (a phrasing,
             a synonym, a typo). A request carries the query; its intent is the truth the oracle alone reads
  policies   the served funnel (SearchService: the catalogue and the engagement counts read from the
             refreshed online store once a day, understanding, BM25 and semantic candidates, fusion), with
               champion     the registered stage-2 ranker behind stage 1 (what the API serves)
               <ranker>     any stage-2 ranker of the latest training (lambdamart, lightgbm)
               bm25         no ranker: the BM25 source's own order after query understanding (the offline
                            table's "bm25" row; the baseline)
               random       a random score for each of the funnel's candidates
               oracle       the world's expected purchases of each candidate for the request's intent (its
                            grade, rating, price and availability: the order that maximises the expected
                            purchases of a page under the world's position bias) in both stages' place. It
                            ranks the funnel's candidates only, as the offline table's "oracle over
                            candidates" does: an exact product no source found stays unseen
             each shows a page of the logs' size (`page_size`) and logs the score it served
             (`served_score`)
  reactions  the world's `reactions`, as in the logs: each slot examined with the position bias
             (position^-0.7), clicked by the grade, the rating and the price, a dwell, an add to cart after a
             long dwell, a purchase after the cart. Logged as rows of the impressions table (with the
             searcher and the intent beside them) and the truth they were drawn from: the ESCI grade,
             P(click) and P(purchase) at the slot
  end of day the day's searches and impressions join the world's tables, the pipeline's SearchData is rebuilt
             from them (its logs and the examples a next training reads), and the engagement counts (per
             product, per query and product) are published to Feast again with the query keys: the next day's
             funnel reads the new clicks and purchases, and the new queries' history
  metrics    purchases per search (the chapter's conversion rate; the primary), CTR (clicks per product
             shown), the success rate (searches with a dwell beyond T or an add to cart: the chapter's
             successful session; a search is a session here, the world has no other), adds to cart per
             search, dwell seconds per search (the chapter's total dwell time) and revenue per search (the
             prices of the products bought)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from common.features.store import FeatureRepo
from common.online.search_stages import RandomStage
from common.online.simulator import Metric, OnlineSystem, Policy
from common.search.funnel import Candidates, SearchFunnel
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.search.dataset import engagement_grade
from systems.search.features import QueryKeys
from systems.search.pipeline import publish_engagement
from systems.search.serving import Filters, SearchService, serving_inputs
from systems.search.world import ProductWorld, examination_probability
from systems.search.world_data import search_data

log = logging.getLogger(__name__)
BASELINE = "bm25"
METRICS = {
    "conversion_rate": Metric("purchases", "searches", "purchases per search (the chapter's conversion rate)"),
    "ctr": Metric("clicks", "impressions", "clicks per product shown (the chapter's CTR)"),
    "success_rate": Metric(
        "successes", "searches", "searches with a dwell beyond T or an add to cart (the chapter's successful session)"
    ),
    "add_to_cart_per_search": Metric("carts", "searches", "products added to the cart per search"),
    "dwell_per_search": Metric("dwell", "searches", "seconds spent on the clicked products per search"),
    "revenue_per_search": Metric("revenue", "searches", "the prices of the products bought, per search"),
}
SEARCH_COLUMNS = ("search_id", "timestamp", "user_id", "intent_id", "query", "clean_query")  # the searches table
IMPRESSION_COLUMNS = ("search_id", "product_id", "position", "clicked", "dwell_seconds", "added_to_cart", "purchased")
TRUTH_COLUMNS = ("grade", "p_click", "p_purchase")  # logged beside each product shown, never part of the logs
EVENT_TYPES = {
    **dict.fromkeys(("search_id", "product_id", "position", "user_id", "intent_id", "grade"), np.int64),
    **dict.fromkeys(("clicked", "added_to_cart", "purchased"), bool),
}


class SearchOnline:
    """The product-search world's shoppers after the logs: what they search for, and how they react to a page."""

    unit = "user_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.world = ProductWorld(**config["world"])
        self.tables = self.world.generate()  # the logs the models trained on (same seed)
        self.data = search_data(self.world, self.tables, config)
        self.days_offset = self.world.days
        self.page_size = self.world.page_size  # the logs' pages
        searches = self.tables["searches"]
        self.requests_per_day = config["online"]["requests_per_day"] or len(searches) // self.world.days
        self._next_search = int(searches["search_id"].max()) + 1
        self._day: list[pd.DataFrame] = []  # the day's searches so far: the searches table's rows at its end
        self.repo = FeatureRepo("search") if refresh_features else None
        if self.repo is not None:  # the store as the training left it: an earlier simulation's days are not the logs
            self._publish()

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        searches = self.world.day_searches(rng, self.days_offset + day, self.requests_per_day, self._next_search)
        self._next_search += len(searches)
        self._day.append(searches)
        return searches.copy()

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if not len(shown):  # nothing matched: a search with no page, counted among the searches
            return {}
        shown = np.asarray(shown, dtype=np.int64)
        n, intent = len(shown), int(request["intent_id"])
        reactions = self.world.reactions(rng, np.array([intent]), shown[None, :])
        positions = reactions["position"]
        return {
            "search_id": np.full(n, request["search_id"], dtype=np.int64),
            **reactions,
            "user_id": np.full(n, request["user_id"], dtype=np.int64),
            "intent_id": np.full(n, intent, dtype=np.int64),
            "grade": self.world.grades(intent, shown),
            "p_click": self.world.click_probability(intent, shown) * examination_probability(positions),
            "p_purchase": self.world.purchase_probability(intent, shown, positions),
        }

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        events = logged_types(events)
        grade = engagement_grade(events, self.config["labels"]["dwell_seconds"])
        success = pd.Series(grade >= 2).groupby(events["search_id"].to_numpy()).any()
        searcher = events.groupby("search_id")["user_id"].first()
        price = self.tables["products"]["price"].to_numpy()[events["product_id"].to_numpy()]
        measures = pd.DataFrame(
            {
                "impressions": 1.0,
                "clicks": events["clicked"].to_numpy(float),
                "purchases": events["purchased"].to_numpy(float),
                "carts": events["added_to_cart"].to_numpy(float),
                "dwell": events["dwell_seconds"].to_numpy(float),
                "revenue": np.where(events["purchased"].to_numpy(bool), price, 0.0),
            },
            index=events.index,
        )
        totals = measures.groupby(events["user_id"].to_numpy()).sum()
        totals["successes"] = success.astype(float).groupby(searcher[success.index].to_numpy()).sum()
        asked = requests.groupby(self.unit).size().rename("searches")
        return totals.reindex(asked.index, fill_value=0).fillna(0.0).join(asked).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The daily jobs: the day's searches (a page or none) and impressions join the world's tables, the
        pipeline's data is rebuilt from them, and the engagement counts are published to Feast again."""
        searches = pd.concat(self._day, ignore_index=True)[list(SEARCH_COLUMNS)]
        self._day = []
        impressions = logged_types(events)[list(IMPRESSION_COLUMNS)].reset_index(drop=True)
        self.tables = self.tables | {
            "searches": pd.concat([self.tables["searches"], searches], ignore_index=True),
            "impressions": pd.concat([self.tables["impressions"], impressions], ignore_index=True),
        }
        self.data = search_data(self.world, self.tables, self.config)
        if self.repo is not None:
            self._publish()
        log.info("search: simulated day %d joined the logs (%d searches, %d shown)", day, len(searches), len(events))

    # ---- the truth, for the oracle -------------------------------------------------------------
    def truth(self, intent_id: int, product_rows: np.ndarray) -> np.ndarray:
        """P(purchase | shown at the top slot) of each product for the intent: the oracle's score (the world's
        product ids are the catalogue's rows)."""
        return self.world.purchase_probability(intent_id, product_rows, 1)

    def _publish(self) -> None:
        """The engagement counts of the logs so far into Feast and the query keys beside the catalogue: what the
        training publishes and the service reads."""
        publish_engagement(self.data, QueryKeys(self.data.logs["query"]))


def logged_types(events: pd.DataFrame) -> pd.DataFrame:
    """The simulator's events in the impressions table's dtypes: a day in which some search had no page
    concatenates its columns with an empty float one, so the flags and ids come back as floats."""
    return events.astype(EVENT_TYPES)


@dataclass
class TruthStage:
    """The world's expected purchases for the searcher's intent in the rankers' place."""

    world: SearchOnline
    intent_id: int
    keep: int
    name: str = "oracle"

    def score(self, candidates: Candidates) -> np.ndarray:
        return self.world.truth(self.intent_id, candidates.rows)


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The search world on the simulator, and its policies by name (models are loaded once; the services, with
    the engagement counts of the refreshed online store, are built afresh each day)."""
    online = SearchOnline(config, refresh_features)
    models: dict[str, Champion] = {}
    rng = np.random.default_rng([config["seed"], 2])
    k = online.page_size

    def model(name: str) -> Champion:
        if name not in models:
            models[name] = load_champion("search") if name == "champion" else load_trained_model("search", name)
        return models[name]

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        inputs = serving_inputs()  # once a day: the store changes only at the day's end
        services: dict[str, SearchService] = {}

        def service(name: str) -> SearchService:
            if name not in services:
                services[name] = SearchService(config, model(name), *inputs)
            return services[name]

        def policy(name: str) -> Policy:
            if name not in (BASELINE, "random", "oracle"):
                return _page_policy(service(name), k)
            served = service("champion")  # the champion's candidates: understanding, sources, fusion
            funnel = served.funnel
            if name == BASELINE:
                lexical = replace(funnel, sources=[s for s in funnel.sources if s.name == BASELINE], stages=())
                return _page_policy(served, k, lambda request: lexical)
            if name == "random":
                shuffled = replace(funnel, stages=[RandomStage(rng, k)])
                return _page_policy(served, k, lambda request: shuffled)
            return _page_policy(
                served, k, lambda request: replace(funnel, stages=[TruthStage(online, int(request["intent_id"]), k)])
            )

        return {name: policy(name) for name in names}

    def serve_model(ranker: Champion) -> Policy:
        return _page_policy(SearchService(config, ranker, *serving_inputs()), k)

    names = ("champion", *trained_model_names("search"), BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"].format(k=config["evaluation"]["k"]), config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _page_policy(service: SearchService, k: int, funnel_for: Callable[[dict], SearchFunnel] | None = None) -> Policy:
    """A request's page of k products and the scores they were ranked by: the service's own search as the API
    calls it (no filters), or its funnel with other sources or stages (`funnel_for` the request)."""
    ids = service.products.column("product_id").to_numpy()

    def policy(request: dict) -> dict[str, np.ndarray]:
        if funnel_for is None:
            result, _ = service.search(request["query"], k, Filters())
        else:
            result = funnel_for(request).search(request["query"], k)
        return {"items": ids[result.rows], "served_score": result.scores}

    return policy
