import pytest

from common.app.readme import replace_block


def test_replace_block_keeps_everything_outside_the_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- table:start -->\nold\nrows\n<!-- table:end -->\noutro\n")
    replace_block(path, "table", "| new |\n")
    assert path.read_text() == "intro\n<!-- table:start -->\n| new |\n<!-- table:end -->\noutro\n"


def test_missing_markers_are_an_error(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("no markers\n")
    with pytest.raises(ValueError, match="table:start"):
        replace_block(path, "table", "x")
