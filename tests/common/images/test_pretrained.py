"""common.images.pretrained: the shipped image encoder loads for the config that names it (so the file in the
repository is the one its settings make), a spec without weights pretrains in the run, a written encoder loads
back to the same encodings, and a stale or missing file is refused with what to run."""

import numpy as np
import pytest

from common.app.config import load_config
from common.images.labelled import labelled_photos
from common.images.pretrained import pretrain, pretrained_image_encoder, save_pretrained

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "dim": 8,
    "width": 4,
    "pooling": "avg+max",
    "photos": 200,
    "epochs": 1,
    "learning_rate": 0.003,
    "cosine_decay": True,
}


@pytest.fixture(scope="module")
def photos():
    return labelled_photos(50, size=32, seed=1)[0]


def test_the_shipped_encoder_is_the_one_harmfuls_config_asks_for(photos):
    config = load_config("harmful")
    encoder = pretrained_image_encoder(config["image_encoder"], config["image_size"], config["seed"])
    vectors = encoder.encode(photos)
    assert vectors.shape == (50, config["image_encoder"]["dim"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert encoder.provenance_["settings"]["photos"] == config["image_encoder"]["photos"]


def test_without_weights_the_encoder_is_pretrained_in_the_run(photos):
    encoder = pretrained_image_encoder(TINY | {"weights": None}, 32, 0)
    assert encoder.width == 4 and encoder.encode(photos).shape == (50, 8)


def test_a_written_encoder_loads_back_to_the_encoder_pretraining_makes(tmp_path, photos):
    spec = TINY | {"weights": str(tmp_path / "encoder.safetensors")}
    save_pretrained(spec, 32, 0)
    loaded = pretrained_image_encoder(spec, 32, 0)
    made_now = pretrain(spec, 32, 0)  # the same settings and seed: the same weights
    np.testing.assert_allclose(loaded.encode(photos), made_now.encode(photos), atol=1e-6)
    assert loaded.provenance_["settings"] == TINY | {"image_size": 32, "seed": 0}


def test_a_file_made_with_other_settings_is_refused_with_what_to_run(tmp_path):
    spec = TINY | {"weights": str(tmp_path / "encoder.safetensors")}
    save_pretrained(spec, 32, 0)
    with pytest.raises(ValueError, match="make pretrain-image-encoder"):
        pretrained_image_encoder(spec | {"epochs": 2}, 32, 0)
    with pytest.raises(ValueError, match="make pretrain-image-encoder"):
        pretrained_image_encoder(spec, 32, 1)


def test_a_missing_file_is_refused_with_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="make pretrain-image-encoder"):
        pretrained_image_encoder(TINY | {"weights": str(tmp_path / "none.safetensors")}, 32, 0)
