"""The served moderation (chapter section 7): the harmful-content detection service, then the decision the
demoting and violation services act on.

  author features   the author's profile from Feast's online store (an unknown author: a new account)
  image             the upload decoded with Pillow (checked: format, size, corrupt), embedded by the frozen CNN
  text              what the champion reads: its words' pretrained vectors, pooled and in order (a word the
                    training never saw is encoded for the request), hashed in the network, or the sentence
                    encoder's vector
  classifier        one probability per category (registry: `harmful-ranker@champion`)
  decision          remove at or above a category's removal threshold (validation precision >= 0.97 there and
                    above, a margin over the promise of 0.95; none where the hand labels do not show one),
                    demote at or above its demotion threshold, else allow; the reason is the category furthest
                    past its threshold
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.app.system import ServiceUnavailable
from common.features.store import FeatureRepo
from common.images.files import decode_image
from common.serving.timing import StageTimer
from common.tracking.runs import Champion, ChampionMissing, load_champion
from systems.harmful.evaluation import actions
from systems.harmful.features import AUTHOR_FEATURES, AUTHOR_VIEW, NEW_AUTHOR, numeric_inputs
from systems.harmful.pipeline import SYSTEM, ServedModerator

TRAIN = f"run: make train SYSTEM={SYSTEM}"
ACTIONS = ("allow", "demote", "remove")


class ModerationService:
    def __init__(self, config: dict, champion: Champion, repo: FeatureRepo):
        self.champion = champion
        self.served: ServedModerator = champion.classifier.load()
        self.repo = repo
        self.refs = repo.refs((AUTHOR_VIEW.name,))
        self.max_upload_bytes = config["serving"]["max_upload_bytes"]
        self.image_dim = self.served.image_encoder.dim

    @classmethod
    def load(cls, config: dict) -> ModerationService:
        try:
            champion = load_champion(SYSTEM)
        except ChampionMissing as error:
            raise ServiceUnavailable(str(error)) from error
        repo = FeatureRepo(SYSTEM)
        if not repo.exists():
            raise ServiceUnavailable(f"no {SYSTEM} feature store at {repo.dir}: {TRAIN}")
        return cls(config, champion, repo)

    def author(self, author_id: int) -> tuple[dict, bool]:
        """The author's features from the online store, and whether it knew the author."""
        values = self.repo.online(self.refs, [{"author_id": author_id}])
        row = {name: values[name][0] for name in AUTHOR_FEATURES}
        if all(value is None for value in row.values()):
            return dict(NEW_AUTHOR), False
        return {name: float(value or 0.0) for name, value in row.items()}, True

    def moderate(self, text: str, image: bytes | None, author_id: int) -> dict:
        """Raises common.images.files.ImageRejected for an image that cannot be used."""
        timer = StageTimer()
        with timer.stage("author_features"):
            profile, known = self.author(author_id)
            numeric = numeric_inputs(pd.DataFrame([profile]))
        with timer.stage("image"):
            vector = np.zeros((1, self.image_dim), dtype=np.float32)
            if image is not None:
                pixels = decode_image(image, self.served.image_size, max_bytes=self.max_upload_bytes)
                vector = self.served.image_encoder.encode(pixels[None])
        with timer.stage("text"):
            texts = np.array([text], dtype=object)
            inputs = self.served.inputs(numeric, vector, np.array([image is not None]), texts)
        with timer.stage("classifier"):
            probabilities = self.served.model.predict_proba(inputs)
        with timer.stage("decision"):
            action, reason = actions(probabilities, self.served.thresholds)
        return {
            "probabilities": dict(zip(self.served.categories, probabilities[0].tolist(), strict=True)),
            "action": ACTIONS[int(action[0])],
            "reason": self.served.categories[int(reason[0])] if action[0] > 0 else None,
            "known_author": known,
            "stage_ms": timer.milliseconds,
        }
