import pytest
from typer.testing import CliRunner

from common.app.cli import app

runner = CliRunner()


def test_help_lists_the_lifecycle_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "serve", "evaluate", "bench"):
        assert command in result.output


def test_unknown_system_is_a_clear_usage_error():
    result = runner.invoke(app, ["train", "--system", "nope"])
    assert result.exit_code != 0
    assert "unknown system 'nope'" in result.output


def test_evaluate_without_training_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = runner.invoke(app, ["evaluate", "--system", "ads"])
    assert result.exit_code != 0
    assert result.exit_code == 1
    assert "make train SYSTEM=ads" in result.output


def test_data_is_refused_for_a_system_that_trains_on_its_world_only(tmp_path):
    result = runner.invoke(app, ["train", "--system", "ads", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "ads trains on its synthetic world only" in result.output and "game" in result.output


def test_data_must_be_a_directory(tmp_path):
    result = runner.invoke(app, ["train", "--system", "game", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "is not a directory" in result.output


def test_unreadable_data_files_are_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path / "generated"))
    result = runner.invoke(app, ["train", "--system", "game", "--scale", "tiny", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("error:") and "Traceback" not in result.output


def test_set_overrides_an_existing_config_value_and_refuses_unknown_keys():
    from common.app.cli import set_value

    config = {"features": {"text_encoder": {"kind": "minilm"}, "text_dims": 32}}
    set_value(config, "features.text_encoder.kind=lsa")
    set_value(config, "features.text_dims=16")
    assert config == {"features": {"text_encoder": {"kind": "lsa"}, "text_dims": 16}}
    for bad in ("features.text_dim=3", "feature.text_dims=3", "features.text_dims"):
        with pytest.raises(ValueError, match="--set"):
            set_value(config, bad)
