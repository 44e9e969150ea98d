"""Harmful content detection on the online simulator (common/online/simulator.py): the chapter's online
metrics, measured on the world's new posts after the logs the models trained on.

  arrivals   the posts of a simulated day after the logs (HarmfulWorld.day_posts: the same authors at their
             posting rates, the same topics, intents and evidence), in time order, each a request as POST
             /harmful/moderate takes it: text, language, author id, the image as PNG bytes
  policies   the served moderation (ModerationService.moderate, the API's code path: the author's features from
             Feast's online store, the image decoded and embedded, the text, one probability per category, then
             remove / demote / allow by the thresholds), with in the classifier's place
               champion      the registered model
               <model>       any model of the latest training (logistic_baseline: the offline baseline)
               reports_only  no model: nothing is acted on at posting; harmful posts come down only when users
                             report them (the baseline: moderation before a detection model)
               random        the champion's probabilities of a random earlier post, through its thresholds:
                             as many posts acted on as the champion, none for what it shows
               oracle        the post's true categories (1 or 0): exactly the harmful posts removed
             In every arm users report what they see, and a post's first report sends it to review by the
             hand labellers (the world's hand labels: the truth, annotator_error aside), who take it down if
             they find it harmful: the "user detected" half of the chapter's proactive rate.
  reactions  the world's truth. The post's reach over its life as the world draws it (from the author's
             followers, more for harmful posts); a demoted post keeps demote_reach of it, a removed one none.
             Reports are drawn as the world draws them (biased by category, some false, late) on the reach the
             post gets; a post taken down at its first report keeps the share of its reach its viewers had
             seen by then (they come at the pace its reporters do: HarmfulWorld.seen_share), and no later
             report. Every removal is appealed, and reversed when the post is not harmful. Logged as rows of
             the posts table (impressions and engagement as the post got them, n_reports by the day's end), with
             the truth they were drawn from beside them (TRUTH_COLUMNS)
  end of day the day's posts join the posts table and the reports that came by the day's end (the late ones
             of earlier days too) the reports table: the natural labels a next training reads
             (features.natural_labels). Each author's violation count grows by its posts removed for good, its
             report count by the reports on its posts, and the author profiles are republished into Feast:
             the next day's moderation reads them (an author's history weighs on its next posts)
  metrics    prevalence (harmful impressions / all impressions: the primary; lower is better), harmful
             impressions per post, harmful reach (harmful impressions / what the harmful posts would have got
             unmoderated), proactive rate (harmful posts removed at posting, before any report / all harmful
             posts removed), reversed appeals (removals reversed on appeal / removals)

Users are split between the arms by author: all of an author's posts are moderated the same way, and the
features an arm's moderation feeds back (the author's violations) stay within the arm.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from common.features.store import FeatureRepo
from common.images.files import encode_png
from common.online.simulator import Metric, OnlineSystem, Policy
from common.tracking.runs import Champion, load_champion, load_trained_model, trained_model_names
from systems.harmful import load_world
from systems.harmful.evaluation import NEVER, Thresholds
from systems.harmful.features import author_profiles, publish_author_profiles
from systems.harmful.pipeline import SYSTEM, ServedModerator
from systems.harmful.serving import ModerationService
from systems.harmful.world import CATEGORIES, REPORT_INPUTS

log = logging.getLogger(__name__)
BASELINE = "reports_only"
METRICS = {
    "prevalence": Metric(
        "harmful_impressions", "impressions", "harmful impressions / all impressions", lower_is_better=True
    ),
    "harmful_impressions_per_post": Metric(
        "harmful_impressions", "posts", "impressions of harmful posts per post", lower_is_better=True
    ),
    "harmful_reach": Metric(
        "harmful_impressions",
        "harmful_potential_impressions",
        "harmful impressions / what the harmful posts would have got unmoderated",
        lower_is_better=True,
    ),
    "proactive_rate": Metric(
        "proactive_removals", "harmful_removals", "harmful posts removed at posting / all harmful posts removed"
    ),
    "reversed_appeals": Metric("reversed", "removals", "removals reversed on appeal / removals", lower_is_better=True),
}
# Logged beside each post, never part of the posts table: what the reactions were drawn from and what happened.
TRUTH_COLUMNS = (
    "action",  # the served decision: allow, demote, remove
    "harmful",  # any true category
    "potential_impressions",  # the post's reach unmoderated
    "shown_impressions",  # its reach under the served decision, which reports were drawn on (before a takedown)
    "removed_at_posting",
    "taken_down_on_report",
    "removed_at",  # when it came down (NaT: it stayed up)
    "reversed",  # removed, appealed, and not harmful
    "reports_total",  # every report it got over its life, observed by the day's end or later
    *REPORT_INPUTS,
)


class HarmfulOnline:
    """The harmful world's authors after the logs: what they post, and how the platform's users react."""

    unit = "author_id"
    metrics = METRICS

    def __init__(self, config: dict, refresh_features: bool = True):
        self.config = config
        self.world = load_world(config)
        self.tables = self.world.generate()  # the logs the models trained on (same seed)
        posts = self.tables["posts"]
        self.posts_columns = list(posts.columns)
        self.days_offset = self.world.n_days
        self.start = pd.Timestamp(self.world.start, tz="UTC")
        self.posts_per_day = config["online"]["requests_per_day"] or round(self.world.n_posts / self.world.n_days)
        self.demote_reach = config["moderation"]["demote_reach"]
        self.median_impressions = float(posts["impressions"].median())  # the world's "more viewers" scale
        self._next_post = int(posts["post_id"].max()) + 1
        self.pending_reports = self.tables["reports"].iloc[:0]  # reports drawn on earlier days, yet to come
        self._drawn: list[dict[str, np.ndarray]] = []  # reports drawn today
        self._decisions: dict[int, str] = {}  # post id -> the served decision, until the world reacts
        self.moderating: int | None = None  # the post being moderated: the oracle's
        # The author profiles as training published them (as of the day before the logs' first), then each day's.
        self.authors = self.tables["authors"].copy()
        self.feature_start = posts["created_at"].min().normalize()
        self.profiles = author_profiles(self.authors, self.feature_start - pd.Timedelta(days=1))
        self.refresh_features = refresh_features
        if refresh_features:  # day one serves the profiles as training left them, whatever ran before
            self._publish(posts["created_at"].max())

    # ---- the simulator's OnlineWorld ---------------------------------------------------------
    def arrivals(self, day: int, rng: np.random.Generator) -> pd.DataFrame:
        posts = self.world.day_posts(self.days_offset + day, self.posts_per_day, rng, self._next_post)
        self._next_post += len(posts)
        self.posts_today = posts.reset_index(drop=True)
        self._rows = self.posts_today.to_dict("records")
        # What the day's reports are drawn from, as arrays (created_at: datetime64, UTC).
        report_inputs = ["post_id", "created_at", *(f"true_{c}" for c in CATEGORIES), *REPORT_INPUTS]
        self._columns = {name: self.posts_today[name].to_numpy() for name in report_inputs}
        self._columns["created_at"] = self.posts_today["created_at"].to_numpy("datetime64[ns]")
        self._position = pd.Series(np.arange(len(posts)), index=posts["post_id"].to_numpy())
        self._day_end = self.start + pd.Timedelta(days=self.days_offset + day + 1)
        self._day_end64 = self._day_end.tz_localize(None).to_datetime64()
        images = np.full(len(posts), None, dtype=object)
        with_image = np.flatnonzero(posts["has_image"].to_numpy())
        for row, pixels in zip(with_image, self.world.images(posts.iloc[with_image]), strict=True):
            images[row] = encode_png(pixels)
        columns = ["post_id", "author_id", "created_at", "language", "text"]
        return posts[columns].reset_index(drop=True).assign(image=images)

    def enforce(self, post_id: int, action: str) -> None:
        """The demoting and violation services carry out the served decision on the post."""
        self._decisions[post_id] = action

    def react(self, request: dict, shown: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        (post_id,) = (int(i) for i in shown)
        row = self._position[post_id]
        post = self._rows[row]
        action = self._decisions.pop(post_id)
        truth = np.array([post[f"true_{c}"] for c in CATEGORIES], dtype=bool)
        potential = int(post["impressions"])
        if action == "remove":
            shown_impressions = 0
        else:
            shown_impressions = potential if action == "allow" else int(rng.binomial(potential, self.demote_reach))
        one = {name: column[row : row + 1] for name, column in self._columns.items()}
        reports = self.world.report_draws(rng, one, np.array([shown_impressions]), self.median_impressions)
        order = np.argsort(reports["reported_at"], kind="stable")
        reports = {name: column[order] for name, column in reports.items()}
        created = one["created_at"][0]
        impressions, removed_at, taken_down = shown_impressions, (created if action == "remove" else None), False
        if action != "remove" and len(order):  # the first report: the hand labellers review the post
            first = reports["reported_at"][0]
            verdict = truth ^ (rng.random(len(CATEGORIES)) < self.world.annotator_error)
            if verdict.any():
                removed_at, taken_down = first, True
                seen = self.world.seen_share((first - created) / np.timedelta64(1, "D"))
                impressions = int(rng.binomial(impressions, float(seen)))
                reports = {name: column[:1] for name, column in reports.items()}  # nobody sees it after
        self._drawn.append(reports)
        removed = action == "remove" or taken_down
        kept = impressions / potential if potential else 0.0
        # The posts table's columns but `day` (the simulator's own column: posts_rows puts it back).
        logged = {name: post[name] for name in self.posts_columns if name != "day"} | {
            "impressions": impressions,
            **{name: int(rng.binomial(post[name], kept)) for name in ("likes", "comments", "shares")},
            "n_reports": int((reports["reported_at"] < self._day_end64).sum()),  # observed by the day's end
        }
        truth_columns = {
            "action": action,
            "harmful": bool(truth.any()),
            "potential_impressions": potential,
            "shown_impressions": shown_impressions,
            "removed_at_posting": action == "remove",
            "taken_down_on_report": taken_down,
            "removed_at": pd.NaT if removed_at is None else pd.Timestamp(removed_at, tz="UTC"),
            "reversed": removed and not truth.any(),
            "reports_total": len(reports["post_id"]),
            **{name: post[name] for name in REPORT_INPUTS},
        }
        return {name: np.asarray([value]) for name, value in (logged | truth_columns).items()}

    def unit_totals(self, requests: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
        harmful = events["harmful"].to_numpy(bool)
        impressions = events["impressions"].to_numpy(float)
        potential = events["potential_impressions"].to_numpy(float)
        at_posting = events["removed_at_posting"].to_numpy(bool)
        removed = at_posting | events["taken_down_on_report"].to_numpy(bool)
        measures = pd.DataFrame(
            {
                "impressions": impressions,
                "harmful_impressions": np.where(harmful, impressions, 0.0),
                "harmful_potential_impressions": np.where(harmful, potential, 0.0),
                "removals": removed.astype(float),
                "harmful_removals": (removed & harmful).astype(float),
                "proactive_removals": (at_posting & harmful).astype(float),
                "reversed": events["reversed"].to_numpy(float),
            },
            index=events.index,
        )
        totals = measures.groupby(events["author_id"].to_numpy()).sum()
        posts = requests.groupby(self.unit).size().rename("posts")
        return totals.reindex(posts.index, fill_value=0).join(posts).astype(float)

    def end_of_day(self, day: int, events: pd.DataFrame) -> None:
        """The daily jobs: the day's posts and the reports that came join the logs (the natural labels); the
        authors' violation and report counts grow, and their profiles go into Feast as of the day's end."""
        day_posts = posts_rows(events, self.tables["posts"], self.start)
        posts = pd.concat([self.tables["posts"], day_posts], ignore_index=True)
        drawn = {name: np.concatenate([r[name] for r in self._drawn]) for name in self.pending_reports.columns}
        drawn["reported_at"] = pd.to_datetime(drawn["reported_at"], utc=True)
        pending = pd.concat([self.pending_reports, pd.DataFrame(drawn)], ignore_index=True)
        self._drawn = []
        came = pending["reported_at"] < self._day_end
        arrived = pending[came].sort_values(["reported_at", "post_id"], kind="stable")
        self.pending_reports = pending[~came].reset_index(drop=True)
        reports = pd.concat([self.tables["reports"], arrived], ignore_index=True)
        counts = reports["post_id"].value_counts()
        posts["n_reports"] = counts.reindex(posts["post_id"].to_numpy(), fill_value=0).to_numpy()
        self.tables = self.tables | {"posts": posts, "reports": reports}

        removed = events["removed_at_posting"].to_numpy(bool) | events["taken_down_on_report"].to_numpy(bool)
        violations = events.loc[removed & ~events["reversed"].to_numpy(bool), "author_id"].value_counts()
        author_of = posts.set_index("post_id")["author_id"]
        reported = author_of.reindex(arrived["post_id"].to_numpy()).value_counts()
        ids = self.authors["author_id"].to_numpy()
        self.authors["violation_count"] += violations.reindex(ids, fill_value=0).to_numpy()
        self.authors["report_count"] += reported.reindex(ids, fill_value=0).to_numpy()
        self.profiles = pd.concat([self.profiles, author_profiles(self.authors, self._day_end)], ignore_index=True)
        if self.refresh_features:
            self._publish(self._day_end)
        log.info(
            "harmful: simulated day %d joined the logs (%d posts, %d reports, %d still to come)",
            day,
            len(events),
            len(arrived),
            len(self.pending_reports),
        )

    # ---- the truth, for the oracle -------------------------------------------------------------
    def truth(self, post_id: int) -> np.ndarray:
        """(categories,) 0/1: the post's true categories."""
        post = self._rows[self._position[post_id]]
        return np.array([post[f"true_{c}"] for c in CATEGORIES], dtype=np.float64)

    def _publish(self, end: pd.Timestamp) -> None:
        """The author profiles so far into Feast, as the training publishes them."""
        publish_author_profiles(SYSTEM, self.profiles, self.feature_start, end)


def posts_rows(events: pd.DataFrame, logs: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """A simulated day's posts as rows of the posts table, in its columns and dtypes (`day`: since the start)."""
    created = pd.to_datetime(events["created_at"], utc=True)
    rows = events.assign(created_at=created, day=(created - start) // pd.Timedelta(days=1))
    return rows[list(logs.columns)].astype(logs.dtypes.to_dict()).reset_index(drop=True)


class ConstantScores:
    """No model: the same probability for every category of every post."""

    def __init__(self, value: float):
        self.value = value

    def predict_proba(self, inputs) -> np.ndarray:
        return np.full((len(inputs), len(CATEGORIES)), self.value)


class ShuffledScores:
    """A model's scores given to the wrong posts: each post gets the probabilities the model gave a random
    earlier post (the first: 0). The policy acts as often as the model, by the same thresholds, but knows
    nothing of the post: uniform random probabilities would instead act on most posts (a threshold of 0.3 in
    one category is passed by 70% of them)."""

    def __init__(self, model, rng: np.random.Generator):
        self.model, self.rng = model, rng
        self.given: list[np.ndarray] = []

    def predict_proba(self, inputs) -> np.ndarray:
        scores = self.model.predict_proba(inputs)
        earlier = [self.given[i] for i in self.rng.integers(len(self.given), size=len(scores))] if self.given else []
        self.given.extend(scores)
        return np.stack(earlier) if earlier else np.zeros_like(scores)


class TruthScores:
    """The world's truth in the classifier's place: 1 for each true category of the post being moderated."""

    def __init__(self, online: HarmfulOnline):
        self.online = online

    def predict_proba(self, inputs) -> np.ndarray:
        return self.online.truth(self.online.moderating)[None, :]


def online_system(config: dict, refresh_features: bool = True) -> OnlineSystem:
    """The harmful world on the simulator, and its policies by name (models are loaded once; the services,
    which read the author profiles from the online store, are built each day)."""
    online = HarmfulOnline(config, refresh_features)
    served: dict[str, ServedModerator] = {}
    rng = np.random.default_rng([config["seed"], 2])
    n = len(CATEGORIES)

    def moderator(name: str) -> ServedModerator:
        if name in served:
            return served[name]
        if name == "random":  # the champion's scores, shuffled between posts
            champion = moderator("champion")
            served[name] = replace(champion, model=ShuffledScores(champion.model, rng))
        elif name in (BASELINE, "oracle"):  # the champion's image encoder, its classifier replaced
            champion = moderator("champion")
            never, half = Thresholds(*[np.full(n, NEVER)] * 3), Thresholds(*[np.full(n, 0.5)] * 3)
            model, thresholds = (ConstantScores(0.0), never) if name == BASELINE else (TruthScores(online), half)
            served[name] = replace(champion, model=model, thresholds=thresholds, text="hashed", text_encoder=None)
        else:
            model = load_champion(SYSTEM) if name == "champion" else load_trained_model(SYSTEM, name)
            served[name] = model.classifier.load()
        return served[name]

    def policies(names: Sequence[str]) -> dict[str, Policy]:
        repo = FeatureRepo(SYSTEM)
        # As the server does: one post on one thread (intra-op threads only spin against each other on a busy
        # machine: 25 ms a post instead of 100 for the champion at tiny scale).
        torch.set_num_threads(1)
        return {
            name: _policy(ModerationService(config, Champion(moderator(name), name, "", ""), repo), online)
            for name in names
        }

    def serve_model(model: Champion) -> Policy:
        return _policy(ModerationService(config, model, FeatureRepo(SYSTEM)), online)

    names = ("champion", *trained_model_names(SYSTEM), BASELINE, "random", "oracle")
    offline = (config["champion"]["metric"], config["champion"]["goal"])
    return OnlineSystem(online, policies, names, BASELINE, serve_model, offline_metric=offline)


def _policy(service: ModerationService, online: HarmfulOnline) -> Policy:
    """The served moderation as a policy: the post it moderated, its decision carried out, and what it served
    (`served_action`, `served_<category>`: each category's probability)."""

    def policy(request: dict) -> dict[str, np.ndarray]:
        post_id = int(request["post_id"])
        online.moderating = post_id
        answer = service.moderate(request["text"], request["image"], int(request["author_id"]))
        online.enforce(post_id, answer["action"])
        served = {f"served_{c}": np.array([p]) for c, p in answer["probabilities"].items()}
        return {"items": np.array([post_id]), "served_action": np.array([answer["action"]], dtype=object), **served}

    return policy
