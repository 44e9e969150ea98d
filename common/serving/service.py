"""What every system's service loads first: its feature repo and the champion models it serves by
alias, or ServiceUnavailable saying what is missing (the app answers 503 and names the command);
and what it answers: the funnel's ranked list with what the response envelope reports."""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass, field

import pyarrow as pa

from common.app.system import ServiceUnavailable
from common.features.store import FeatureRepo
from common.funnel.funnel import Ranked
from common.tracking.runs import Champion, ChampionMissing, load_champion


def open_serving(system: str, kinds: tuple[str, ...] = ("ranker",)) -> tuple[FeatureRepo, dict[str, Champion]]:
    """The system's feature repo and `<system>-<kind>@champion` for each kind."""
    repo = FeatureRepo(system)
    if not repo.exists():
        raise ServiceUnavailable(f"no {system} feature store at {repo.dir}")
    try:
        champions = {kind: load_champion(system, kind) for kind in kinds}
    except ChampionMissing as error:
        raise ServiceUnavailable(str(error)) from error
    return repo, champions


@dataclass(frozen=True)
class Served:
    """One request's answer: whether the store knew the user, the funnel's ranked list, each stage's
    milliseconds, and the user's features as the funnel saw them (what a response explains)."""

    known_user: bool
    ranked: Ranked
    stage_ms: dict[str, float]
    user: dict = field(default_factory=dict)


def release_freed_memory() -> None:
    """Give back to the OS what loading a serving bundle allocated and freed: pyarrow's pool keeps freed
    blocks for reuse (~200 MB after reading a few million parquet rows) and so does glibc's heap. A server
    process stays smaller by that much for its whole life."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc (macOS, musl): that allocator keeps what it keeps
    libc.malloc_trim(0)
