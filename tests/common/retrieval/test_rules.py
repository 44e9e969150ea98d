import numpy as np

from common.retrieval.rules import TargetingSource
from common.retrieval.sources import RetrievalRequest

GENDERS, AGES = ["female", "male"], ["18-24", "25-34", "35+"]
# Ad 10 targets everyone; 11 women only; 12 men aged 25-34; 13 every gender, 35+ only.
SOURCE = TargetingSource.build(
    np.array([10, 11, 12, 13]),
    {
        "gender": (GENDERS, [GENDERS, ["female"], ["male"], GENDERS]),
        "age": (AGES, [AGES, AGES, ["25-34"], ["35+"]]),
    },
)


def ask(k=10, **attributes) -> list[int]:
    return SOURCE.retrieve(RetrievalRequest(1, attributes=attributes), k).tolist()


def test_an_item_is_a_candidate_when_it_admits_every_attribute_of_the_user():
    assert ask(gender="female", age="18-24") == [10, 11]
    assert ask(gender="male", age="25-34") == [10, 12]
    assert ask(gender="male", age="35+") == [10, 13]
    assert ask(k=1, gender="female", age="18-24") == [10]


def test_an_unknown_value_only_matches_items_that_admit_every_value():
    assert ask(gender="unknown", age="unknown") == [10]
    assert ask(age="35+") == [10, 13]  # gender missing: only ads that admit every gender
