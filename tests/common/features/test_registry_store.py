import pandas as pd

from common.features.store import FeatureRepo
from common.features.views import View

T = pd.Timestamp("2026-01-05", tz="UTC")


def test_feasts_registry_file_is_replaced_whole_by_each_write(tmp_path, monkeypatch):
    """Feast's own file store truncates registry.db and writes it again, several times per training: a training
    killed in between leaves an empty registry. Ours renames a complete new file over it, so one who opened the
    old file still reads all of it, and the store reads the new one."""
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    repo = FeatureRepo("registrytest")
    counts = pd.DataFrame({"post_id": [1, 2], "likes": [3, 0], "event_timestamp": T})
    views = [View("post_reactions", "post_id")]
    repo.publish({"post_reactions": counts}, views, {"ranker": {"post_reactions": None}}, T - pd.Timedelta(days=1), T)
    registry = repo.dir / "registry.db"
    with registry.open("rb") as old_reader:
        old = registry.read_bytes()
        repo.publish({"post_reactions": counts}, views, {"ranker": {"post_reactions": None}}, T, T)
        assert old_reader.read() == old
    assert registry.read_bytes() != old
    assert repo.online(repo.refs(("post_reactions",)), [{"post_id": 1}])["likes"] == [3]
    assert not [path.name for path in repo.dir.iterdir() if path.name.endswith(".tmp")]
