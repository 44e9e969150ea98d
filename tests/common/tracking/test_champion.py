import pytest

from common.tracking.runs import choose_champion

METRICS = {
    "lr": {"validation_nce": 0.95, "validation_ndcg_at_5": 0.30},
    "gbdt": {"validation_nce": 0.93, "validation_ndcg_at_5": 0.25},
}


def test_the_config_names_the_metric_and_its_direction():
    assert choose_champion(METRICS, {"metric": "validation_nce", "goal": "min"}) == "gbdt"
    assert choose_champion(METRICS, {"metric": "validation_ndcg_at_{k}", "goal": "max"}, k=5) == "lr"
    with pytest.raises(KeyError):
        choose_champion(METRICS, {"metric": "validation_ndcg_at_{k}", "goal": "max"}, k=10)
    with pytest.raises(KeyError):
        choose_champion(METRICS, {"metric": "validation_nce", "goal": "best"})
