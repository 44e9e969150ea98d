"""What every system's service loads first: its feature repo and the champion models it serves by
alias, or ServiceUnavailable saying what is missing (the app answers 503 and names the command)."""

from __future__ import annotations

from common.app.system import ServiceUnavailable
from common.features.store import FeatureRepo
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
