from common.app.config import _merged, load_config


def test_a_scale_overrides_any_section_key_by_key():
    assert _merged({"a": {"x": 1, "y": 2}, "b": 3}, {"a": {"y": 5}, "c": 4}) == {"a": {"x": 1, "y": 5}, "b": 3, "c": 4}
    tiny, default = load_config("newsfeed", "tiny"), load_config("newsfeed", "default")
    assert tiny["periods"]["warmup_days"] == 1 and default["periods"]["warmup_days"] > 1
    assert tiny["periods"]["days"]["train"] is None is default["periods"]["days"]["train"]  # untouched keys stay
    assert tiny["periods"]["days"]["test"] < default["periods"]["days"]["test"]
    assert tiny["models"]["lightgbm_heads"]["learning_rate"] == default["models"]["lightgbm_heads"]["learning_rate"]
    assert tiny["world"]["n_users"] < default["world"]["n_users"] and tiny["world"]["seed"] == tiny["seed"]


def test_a_scale_replaces_a_single_value():
    tiny, default = load_config("harmful", "tiny"), load_config("harmful", "default")
    assert tiny["torch_threads"] == 1 and default["torch_threads"] is None
