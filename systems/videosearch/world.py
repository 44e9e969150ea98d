"""The video-search world: the video world's catalogue plus what the chapter's visual search needs, namely
what each video shows (its visual concepts), frame features that carry it, and annotated (query text, video)
pairs, with the relevance of any (query, video) known exactly (the oracle).

    python -c "from systems.videosearch.world import *; print(VideoSearchWorld(2000).generate()['queries'])"

Catalogue: systems/video/world.py's videos (title, tags, genre, language, channel, age rating, regions, latent
factors), without its users, each filmed in a place (a real city name) that its description names. The video
world's words are genre-level (a few hundred tags and nouns shared by thousands of videos); the place is what
makes a query about one video specific, as a real title's names are.
Concepts: each video shows 1-3 visual concepts (real words: kitchen, dog, sunset, ...), drawn mostly from its
genre's (a cooking video shows a kitchen) and sometimes from all of them. Each concept is mentioned in the
video's text (its tags and description) with probability `mention_rate`; the others only show in the frames,
which is why visual search exists.
Frames: what public video datasets ship, a pre-extracted vector per sampled frame: (n_videos, n_frames,
frame_dim). A frame sees one of the video's concepts and the video's latent factors (so the genre and tags
too) through one fixed random projection, plus noise; a share `blank_frame_rate` of frames (titles, fades,
transitions) sees nothing but noise.
Queries: 1-6 real words written for one video (the annotated pair), made of units (a tag such as "street
food" is one): "text" queries take 2-3 units of its text (tags, title noun, genre, place, mentioned
concepts), "visual" ones name 1-2 concepts its text never mentions, "both" take 1-2 units of its text and one
such concept. A video whose every concept is mentioned only gets text queries. Splits are by distinct query
text, so no test query text was trained on.
Oracle (binary): a video is relevant to a query when it is the query's annotated video or when its content
(the words of its title, description and tags, and its visual concepts) holds every word of the query.
Searchers (the online simulator's users, systems/videosearch/online.py): `n_searchers` people with the video
world's ages and countries (what the re-ranking rules read) and a heavy-tailed activity; each search is a
query the same generator writes, for a video the searcher has in mind (the annotated pairs are such
searches, written down). Drawn from streams of their own, so the catalogue, frames and pairs are the same
with or without them.
Reactions to a results page: a result at position p is looked at with P = p^-examination_decay (position
bias), clicked with P = examination x sigmoid(click_base + click_relevance x relevance + clickbait_weight x
the video's clickbait, the video world's channel habit); a clicked video is watched to the end with P
complete_rate[relevance], otherwise a Beta(partial_watch[relevance]) share of it. Clickbait moves clicks and
not watching: the chapter's reason to prefer watch time over CTR. Watch time = share x the video's duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.search.query import tokenise
from systems.video.world import AGE_BAND_SHARE, AGE_EDGES, COUNTRIES, COUNTRY_SHARE, GENRE_NAMES, GENRES, VideoWorld

# What a genre's videos mostly show; every concept is a real word that no title or tag of the video world uses,
# so a concept is in a video's text only when the world mentions it.
GENRE_CONCEPTS = {
    "music": ("stage", "crowd", "microphone", "night", "fireworks"),
    "gaming": ("screen", "keyboard", "castle", "night"),
    "comedy": ("stage", "crowd", "microphone", "office"),
    "news": ("studio", "skyline", "crowd", "flag"),
    "sports": ("stadium", "crowd", "ball", "grass"),
    "education": ("classroom", "whiteboard", "laboratory", "book"),
    "cooking": ("kitchen", "fire", "knife", "market"),
    "travel": ("mountain", "ocean", "skyline", "desert", "sunset", "boat"),
    "tech": ("screen", "desk", "keyboard", "studio"),
    "beauty": ("mirror", "studio", "bedroom", "candle"),
    "fitness": ("gym", "park", "grass", "sunset"),
    "kids": ("balloon", "classroom", "garden", "horse"),
    "film": ("night", "skyline", "car", "castle"),
    "science": ("laboratory", "telescope", "forest", "ocean"),
    "diy": ("garage", "garden", "workbench", "knife"),
    "pets": ("dog", "cat", "park", "grass"),
    "autos": ("car", "garage", "desert", "mountain"),
    "vlogs": ("bedroom", "skyline", "car", "baby"),
    "asmr": ("bedroom", "candle", "microphone", "night"),
    "documentary": ("forest", "desert", "ocean", "snow", "river"),
}
# Shown by any genre's videos now and then (through the uniform part of the draw) and by no genre's mostly.
OTHER_CONCEPTS = ("bicycle", "airplane", "waterfall", "train", "bridge", "sand")
# Where videos are filmed: one-word city names, none of them a word of the video world's text or a concept.
PLACES = tuple(
    """
    amsterdam athens auckland austin bangkok barcelona beijing berlin bogota boston brisbane brussels budapest
    cairo calgary chicago copenhagen dallas delhi denver dubai dublin edinburgh florence geneva glasgow hamburg
    hanoi havana helsinki honolulu houston istanbul jakarta johannesburg kyoto lagos lima lisbon liverpool london
    lyon madrid manchester manila marseille melbourne miami milan montreal moscow mumbai munich nairobi naples
    nashville oslo osaka paris perth phoenix portland prague quebec reykjavik riga rome santiago seattle seoul
    seville shanghai singapore stockholm sydney taipei tokyo toronto valencia vancouver venice vienna warsaw
    zurich
    """.split()
)
CONCEPTS = sorted({c for cs in GENRE_CONCEPTS.values() for c in cs} | set(OTHER_CONCEPTS))
MAX_CONCEPTS = 3
KINDS = ("text", "visual", "both")
VIDEO_COLUMNS = (
    "video_id", "title", "description", "tags", "genre", "language", "place", "channel_id", "age_rating",
    "available_regions",
)  # fmt: skip
MAX_QUERY_WORDS = 6
SPLITS = ("train", "validation", "test")


@dataclass
class VideoSearchWorld:
    n_videos: int = 100_000
    n_frames: int = 8
    frame_dim: int = 64
    n_queries: int = 200_000
    seed: int = 0
    mention_rate: float = 0.3  # per concept: named in the video's tags and description
    genre_concept_share: float = 0.75  # of a video's concept draws from its genre's concepts, the rest uniform
    concept_count_share: tuple[float, float, float] = (0.4, 0.4, 0.2)  # videos showing 1, 2, 3 concepts
    kind_share: tuple[float, float, float] = (0.4, 0.2, 0.4)  # of queries: text, visual, both
    split_share: tuple[float, float, float] = (0.8, 0.1, 0.1)  # of distinct query texts
    concept_dim: int = 16
    latent_weight: float = 0.5  # of the video's latent factors in a frame, against 1 for its concept
    frame_noise: float = 0.5
    blank_frame_rate: float = 0.2
    place_rate: float = 0.8  # of text and "both" queries: name where the video was filmed
    frame_dtype: type = np.float16  # as shipped: half the memory (100k x 8 x 64 = 100 MB)
    # Searchers and how they react to a results page (the online simulator).
    n_searchers: int = 20_000
    searcher_activity_shape: float = 0.5  # gamma shape of searches per searcher: a few search a lot
    examination_decay: float = 0.6  # P(position p is looked at) = p^-decay: 1, 0.66, 0.52, ... 0.25 at 10
    click_base: float = -2.5
    click_relevance: float = 2.0  # a fitting video's logit of a click, over one that does not fit
    clickbait_weight: float = 1.0  # of the video world's clickbait (channel habit plus own, sd ~0.4)
    complete_rate: tuple[float, float] = (0.02, 0.35)  # P(watched to the end | clicked): not fitting, fitting
    partial_watch: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 5.0), (2.0, 2.0))  # Beta otherwise
    truth: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        # Only the catalogue of the video world is used: its users and logs are never simulated.
        self.catalogue_ = VideoWorld(n_users=1, n_videos=self.n_videos, n_days=1, requests_per_day=1, seed=self.seed)
        self._sample_concepts(rng)
        self._videos = self._videos_table()
        self._content = self._content_matrix()
        self._sample_queries(rng)
        self._sample_searchers(np.random.default_rng([self.seed, 1]))  # its own stream: the tables stay the same

    # ---- what each video shows ---------------------------------------------------------------
    def _sample_concepts(self, rng: np.random.Generator) -> None:
        t, v = self.truth, self.n_videos
        t["video_latent"] = self.catalogue_.truth["video_latent"]
        genre = self.catalogue_.truth["video_genre"]
        concept_index = {c: i for i, c in enumerate(CONCEPTS)}
        mostly = np.zeros((len(GENRE_NAMES), len(CONCEPTS)))
        for g, name in enumerate(GENRE_NAMES):
            mostly[g, [concept_index[c] for c in GENRE_CONCEPTS[name]]] = 1.0
        p = self.genre_concept_share * mostly / mostly.sum(1, keepdims=True) + (1 - self.genre_concept_share) / len(
            CONCEPTS
        )  # (genres, concepts)
        # Distinct concepts per video: the first n of a Gumbel-top-k draw from its genre's distribution.
        keys = np.log(p[genre]) + rng.gumbel(size=(v, len(CONCEPTS)))  # (v, concepts)
        order = np.argsort(-keys, axis=1)[:, :MAX_CONCEPTS]
        n_concepts = rng.choice(np.arange(1, MAX_CONCEPTS + 1), v, p=self.concept_count_share)
        shown = np.arange(MAX_CONCEPTS) < n_concepts[:, None]
        t["video_concepts"] = np.where(shown, order, -1)  # (v, 3) concept ids, -1 pads
        t["concept_mentioned"] = shown & (rng.random((v, MAX_CONCEPTS)) < self.mention_rate)
        t["concept_embedding"] = rng.normal(0, 1, (len(CONCEPTS), self.concept_dim))
        signal_dim = t["video_latent"].shape[1] + self.concept_dim
        t["frame_projection"] = rng.normal(0, 1 / np.sqrt(signal_dim), (signal_dim, self.frame_dim))
        self._frame_rng_seed = int(rng.integers(2**31))  # frames are drawn on demand, from their own stream
        t["video_place"] = rng.integers(0, len(PLACES), v)

    def frames(self) -> np.ndarray:
        """(n_videos, n_frames, frame_dim) frame features, the same on every call; built in chunks so the
        float64 intermediates stay small."""
        t = self.truth
        rng = np.random.default_rng(self._frame_rng_seed)
        out = np.empty((self.n_videos, self.n_frames, self.frame_dim), dtype=self.frame_dtype)
        n_shown = (t["video_concepts"] >= 0).sum(1)
        latent = self.latent_weight * t["video_latent"]  # (v, latent_dim), about unit scale per dimension
        chunk = 16_384
        for lo in range(0, self.n_videos, chunk):
            hi = min(lo + chunk, self.n_videos)
            b = hi - lo
            # Each frame sees one of the video's concepts, drawn uniformly among those it shows.
            pick = (rng.random((b, self.n_frames)) * n_shown[lo:hi, None]).astype(np.int64)  # (b, F)
            concept = np.take_along_axis(t["video_concepts"][lo:hi], pick, axis=1)  # (b, F)
            signal = np.concatenate(
                [
                    np.broadcast_to(latent[lo:hi, None, :], (b, self.n_frames, latent.shape[1])),
                    t["concept_embedding"][concept],
                ],
                axis=2,
            )  # (b, F, latent_dim + concept_dim)
            blank = rng.random((b, self.n_frames, 1)) < self.blank_frame_rate
            signal = np.where(blank, 0.0, signal)
            frame = signal @ t["frame_projection"] + self.frame_noise * rng.standard_normal(
                (b, self.n_frames, self.frame_dim)
            )
            out[lo:hi] = frame
        return out

    # ---- the catalogue's text ----------------------------------------------------------------
    def _videos_table(self) -> pd.DataFrame:
        t = self.truth
        videos = self.catalogue_._videos_table()
        videos["place"] = np.asarray(PLACES)[t["video_place"]]
        concepts = np.asarray(CONCEPTS)
        mentioned = [
            list(concepts[ids[said]]) for ids, said in zip(t["video_concepts"], t["concept_mentioned"], strict=True)
        ]
        descriptions = []
        for genre, tags, place, words in zip(videos["genre"], videos["tags"], videos["place"], mentioned, strict=True):
            about = " and ".join(tag.replace("-", " ") for tag in tags[:2])
            showing = f", showing {' and '.join(words)}" if words else ""
            descriptions.append(f"A {genre} video about {about}, filmed in {place.capitalize()}{showing}.")
        videos["description"] = descriptions
        videos["tags"] = [list(tags) + words for tags, words in zip(videos["tags"], mentioned, strict=True)]
        return videos[list(VIDEO_COLUMNS)]

    def _content_matrix(self) -> sp.csr_matrix:
        """(n_videos, vocabulary) 0/1: the words a video holds, in its text or among its visual concepts."""
        t = self.truth
        texts = self._videos["title"] + " " + self._videos["description"] + " " + self._videos["tags"].str.join(" ")
        words = [set(tokenise(text)) for text in texts]
        concepts = np.asarray(CONCEPTS)
        for held, ids in zip(words, t["video_concepts"], strict=True):
            held.update(concepts[ids[ids >= 0]])
        self.vocabulary_ = {w: i for i, w in enumerate(sorted(set().union(*words)))}
        return _word_matrix(words, self.vocabulary_)

    # ---- annotated queries -------------------------------------------------------------------
    def _sample_queries(self, rng: np.random.Generator) -> None:
        self._units = self._query_units()
        texts, video, kind = self._write_queries(rng, self.n_queries)
        codes, distinct = pd.factorize(np.asarray(texts, dtype=object))
        split = rng.choice(len(SPLITS), len(distinct), p=self.split_share)[codes]
        self._queries = pd.DataFrame(
            {
                "query_id": np.arange(self.n_queries),
                "text": texts,
                "video_id": video,
                "split": np.asarray(SPLITS)[split],
                "kind": np.asarray(KINDS)[kind],
            }
        )
        self._query_words = self._words(texts)

    def _query_units(self) -> tuple[list[list[str]], list[list[str]]]:
        """Per video: the units a text query takes (a tag such as "street food" is one) and the concepts only its
        frames show; a noun may also be a tag or the genre, hence the de-duplication."""
        t, videos = self.truth, self._videos
        concepts = np.asarray(CONCEPTS)
        noun_ids = self.catalogue_.truth["title_noun"]
        nouns = [GENRES[genre].nouns[n].replace("-", " ") for genre, n in zip(videos["genre"], noun_ids, strict=True)]
        textual = [
            list(dict.fromkeys([tag.replace("-", " ") for tag in tags] + [genre, noun, place]))
            for tags, genre, noun, place in zip(videos["tags"], videos["genre"], nouns, videos["place"], strict=True)
        ]
        unsaid = [
            list(concepts[ids[(ids >= 0) & ~said]])
            for ids, said in zip(t["video_concepts"], t["concept_mentioned"], strict=True)
        ]
        return textual, unsaid

    def _write_queries(self, rng: np.random.Generator, n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The query generator: n (text, video, kind) written for videos drawn uniformly."""
        textual, unsaid = self._units
        video = rng.integers(0, self.n_videos, n)
        kind = rng.choice(len(KINDS), n, p=self.kind_share)
        n_text = np.where(kind == 0, rng.integers(2, 4, n), rng.integers(1, 3, n))
        n_visual = np.where(kind == 1, rng.integers(1, 3, n), 1)
        # A random order of up to 12 units per query: the first n of it are picked.
        keys = rng.random((n, 2, 12))
        flip = rng.random(n) < 0.5
        place_first = rng.random(n) < self.place_rate
        texts = []
        for q, v in enumerate(video):
            if not unsaid[v]:
                kind[q], n_text[q] = 0, max(n_text[q], 2)  # nothing that only the frames show: a text query
            units = [] if kind[q] == 1 else _pick(textual[v], n_text[q], keys[q, 0], first=place_first[q])
            if kind[q] != 0:
                units += _pick(unsaid[v], n_visual[q], keys[q, 1])
            while len(units) > 1 and sum(len(u.split()) for u in units) > MAX_QUERY_WORDS:
                units.pop(0)  # "day in the life" is four words
            if flip[q]:
                units.reverse()
            texts.append(" ".join(units))
        return texts, video, kind

    def _words(self, texts: list[str]) -> sp.csr_matrix:
        return _word_matrix([set(tokenise(text)) for text in texts], self.vocabulary_)

    def generate(self) -> dict[str, pd.DataFrame | np.ndarray]:
        """videos (video_id, title, description, tags, genre, language), frames (n_videos, n_frames,
        frame_dim) and queries (query_id, text, video_id: the annotated video, split, kind)."""
        return {"videos": self._videos.copy(), "frames": self.frames(), "queries": self._queries.copy()}

    # ---- the oracle --------------------------------------------------------------------------
    def relevance(self, query_ids: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """(n,) int8 relevance of (query, video) pairs: 1 for the annotated video or one holding every word of
        the query (in its text or among its visual concepts), else 0."""
        query_ids = np.asarray(query_ids)
        annotated = self._queries["video_id"].to_numpy()[query_ids]
        return self._relevance(self._query_words[query_ids], annotated, video_ids)

    def relevant_videos(self, query_ids: np.ndarray) -> list[np.ndarray]:
        """Each query's relevant video ids, sorted (the annotated one always among them)."""
        query_ids = np.asarray(query_ids)
        return self._relevant(self._query_words[query_ids], self._queries["video_id"].to_numpy()[query_ids])

    def search_relevance(self, texts: list[str], intended: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        """`relevance` of (search, video) pairs for searches the annotated pairs do not hold: each search's text
        and the video its searcher had in mind."""
        return self._relevance(self._words(list(texts)), np.asarray(intended), video_ids)

    def search_relevant_videos(self, texts: list[str], intended: np.ndarray) -> list[np.ndarray]:
        """`relevant_videos` of searches the annotated pairs do not hold."""
        return self._relevant(self._words(list(texts)), np.asarray(intended))

    def _relevance(self, q: sp.csr_matrix, annotated: np.ndarray, video_ids: np.ndarray) -> np.ndarray:
        video_ids = np.asarray(video_ids)
        held = np.asarray(q.multiply(self._content[video_ids]).sum(axis=1)).ravel()
        holds_all = held == np.diff(q.indptr)
        return (holds_all | (annotated == video_ids)).astype(np.int8)

    def _relevant(self, q: sp.csr_matrix, annotated: np.ndarray) -> list[np.ndarray]:
        held = (q @ self._content.T).tocsr()  # (n, n_videos): how many of the query's words each video holds
        n_words = np.diff(q.indptr)
        out = []
        for row in range(q.shape[0]):
            cols, counts = (
                held.indices[held.indptr[row] : held.indptr[row + 1]],
                held.data[held.indptr[row] : held.indptr[row + 1]],
            )
            out.append(np.union1d(cols[counts == n_words[row]], annotated[row]))
        return out

    # ---- searchers and their reactions (the online simulator) ------------------------------------
    def _sample_searchers(self, rng: np.random.Generator) -> None:
        t, n = self.truth, self.n_searchers
        band = rng.choice(len(AGE_BAND_SHARE), n, p=AGE_BAND_SHARE)
        t["searcher_age"] = rng.integers(AGE_EDGES[band], AGE_EDGES[band + 1])
        t["searcher_country"] = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)
        t["searcher_activity"] = rng.gamma(self.searcher_activity_shape, 1.0, n)
        t["video_duration_s"] = self.catalogue_.truth["video_duration_s"]
        t["video_clickbait"] = self.catalogue_.truth["video_clickbait"]

    def searches(self, rng: np.random.Generator, n: int) -> pd.DataFrame:
        """n searches: who (searchers by activity, with their age and country) and what (a query the generator
        writes for the video the searcher has in mind: video_id, and the query's kind)."""
        t = self.truth
        who = rng.choice(self.n_searchers, n, p=t["searcher_activity"] / t["searcher_activity"].sum())
        texts, video, kind = self._write_queries(rng, n)
        return pd.DataFrame(
            {
                "user_id": who,
                "age": t["searcher_age"][who],
                "country": np.asarray(COUNTRIES)[t["searcher_country"][who]],
                "text": texts,
                "video_id": video,
                "kind": np.asarray(KINDS)[kind],
            }
        )

    def click_probability(self, relevance: np.ndarray, video_ids: np.ndarray, position: np.ndarray) -> np.ndarray:
        """P(click) of results of `relevance` (0/1) at 1-based `position`: examination x attraction."""
        examined = np.asarray(position, float) ** -self.examination_decay
        logit = (
            self.click_base
            + self.click_relevance * np.asarray(relevance)
            + self.clickbait_weight * self.truth["video_clickbait"][np.asarray(video_ids)]
        )
        return examined / (1.0 + np.exp(-logit))

    def respond(
        self, rng: np.random.Generator, relevance: np.ndarray, video_ids: np.ndarray, position: np.ndarray
    ) -> dict[str, np.ndarray]:
        """A searcher's reactions to a page: clicked, the share watched, watched to the end, seconds watched;
        with the P(click) they were drawn from."""
        relevance, video_ids = np.asarray(relevance, np.int64), np.asarray(video_ids)
        p_click = self.click_probability(relevance, video_ids, position)
        clicked = rng.random(len(video_ids)) < p_click
        completed = clicked & (rng.random(len(video_ids)) < np.asarray(self.complete_rate)[relevance])
        a, b = np.asarray(self.partial_watch)[relevance].T
        fraction = np.where(completed, 1.0, np.where(clicked, rng.beta(a, b), 0.0))
        return {
            "clicked": clicked,
            "watch_fraction": fraction,
            "completed": completed,
            "watch_seconds": fraction * self.truth["video_duration_s"][video_ids],
            "p_click": p_click,
        }


def _pick(units: list[str], n: int, keys: np.ndarray, first: bool = False) -> list[str]:
    """min(n, len(units)) distinct units: those with the smallest of uniform `keys` (one per unit); the last
    unit always among them when `first`."""
    keys = keys[: len(units)].copy()
    if first:
        keys[-1] = -1.0
    return [units[i] for i in np.argsort(keys)[:n]]


def _word_matrix(word_sets: list[set[str]], vocabulary: dict[str, int]) -> sp.csr_matrix:
    """(rows, vocabulary) 0/1 int32 matrix of the words of each row that the vocabulary knows."""
    ids = [sorted(vocabulary[w] for w in words if w in vocabulary) for words in word_sets]
    indptr = np.concatenate([[0], np.cumsum([len(row) for row in ids])])
    indices = np.fromiter((i for row in ids for i in row), dtype=np.int32, count=indptr[-1])
    return sp.csr_matrix((np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(len(ids), len(vocabulary)))
