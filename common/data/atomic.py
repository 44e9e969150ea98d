"""Files replaced in one step: a reader (a server starting, the next training) finds the old file or the new
one, never half of one, however the writer stops (a crash, SIGKILL). The new content goes to a temporary file
beside the target, is flushed to disk, then renamed over it: a rename within a directory is atomic.

    with replaced_atomically(path) as temporary:
        table.to_parquet(temporary)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    # Named after the writer's pid: two writers never share a temporary file. One left by a killed writer is
    # never read (it is not the target) and the next write of the same target from that pid replaces it.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    with replaced_atomically(path) as temporary:
        temporary.write_text(text)
