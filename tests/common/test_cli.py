from typer.testing import CliRunner

from common.cli import app

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
