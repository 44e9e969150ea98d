from pathlib import Path

import pytest

from common.data.atomic import replaced_atomically, write_text_atomically


def test_a_write_that_fails_leaves_the_old_file_whole_and_no_temporary(tmp_path: Path):
    target = tmp_path / "results.md"
    target.write_text("old table")
    with pytest.raises(RuntimeError), replaced_atomically(target) as temporary:
        temporary.write_text("half a new ta")
        raise RuntimeError("killed while writing")
    assert target.read_text() == "old table"
    assert [path.name for path in tmp_path.iterdir()] == ["results.md"]


def test_a_reader_of_the_old_file_keeps_reading_it_whole_after_the_replacement(tmp_path: Path):
    """Replaced by a rename, not rewritten in place: a server that opened (or memory-mapped) the old file
    reads the old bytes to the end, while new readers get the new file."""
    target = tmp_path / "items.parquet"
    target.write_bytes(b"old" * 1000)
    with target.open("rb") as old_reader:
        write_text_atomically(target, "new")
        assert old_reader.read() == b"old" * 1000
    assert target.read_text() == "new"
