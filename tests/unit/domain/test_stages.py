import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import DEFAULT_STAGE_MAP, Stage, StageMap, StageMapError, implied


def test_stages_are_ordered_by_engagement_not_by_name() -> None:
    assert Stage.AWARE < Stage.USE < Stage.PRODUCE
    assert sorted([Stage.PRODUCE, Stage.AWARE, Stage.USE]) == [
        Stage.AWARE,
        Stage.USE,
        Stage.PRODUCE,
    ]
    assert max(Stage) is Stage.PRODUCE
    assert [s.value for s in Stage] == ["aware", "use", "produce"]
    assert str(Stage.USE) == "use"
    assert Stage("produce") is Stage.PRODUCE


def test_implication_produce_use_aware() -> None:
    assert implied(Stage.PRODUCE) == (Stage.AWARE, Stage.USE, Stage.PRODUCE)
    assert implied(Stage.USE) == (Stage.AWARE, Stage.USE)
    assert implied(Stage.AWARE) == (Stage.AWARE,)


def test_default_stage_map_is_the_design() -> None:
    assert DEFAULT_STAGE_MAP.to_dict() == {
        "aware": ["email.open", "link.click", "page.view", "toolkit.opened"],
        "use": ["reply.received", "resource.download", "resource.use", "resource.view"],
        "produce": [
            "contribution.submitted",
            "resource.submitted",
            "story.shared",
            "toolkit.shared",
        ],
    }
    assert DEFAULT_STAGE_MAP.stage_of("link.click") is Stage.AWARE
    assert DEFAULT_STAGE_MAP.stage_of("resource.download") is Stage.USE
    assert DEFAULT_STAGE_MAP.stage_of("story.shared") is Stage.PRODUCE
    assert DEFAULT_STAGE_MAP.stage_of("email.delivered") is None
    assert DEFAULT_STAGE_MAP.stage_of("") is None


def test_from_dict_round_trip_and_missing_stage_is_empty() -> None:
    stage_map = StageMap.from_dict({"aware": ["a", "b"], "produce": ["c"]})
    assert stage_map.types_of(Stage.USE) == frozenset()
    assert stage_map.stage_of("c") is Stage.PRODUCE
    assert StageMap.from_dict(stage_map.to_dict()) == stage_map
    assert stage_map.event_types == {"a", "b", "c"}


def test_stage_maps_are_frozen_and_hashable() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_STAGE_MAP.aware = frozenset()  # type: ignore[misc]
    assert hash(StageMap.from_dict(DEFAULT_STAGE_MAP.to_dict())) == hash(DEFAULT_STAGE_MAP)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"aware": ["x"], "use": ["x"]}, "'x' is in two stages: 'aware' and 'use'"),
        ({"aware": [""]}, "aware: event types must be non-empty strings"),
        ({"use": ["ok", 3]}, "use: event types must be non-empty strings, got 3"),
        ({"use": "resource.view"}, "use: must be a list of event types"),
        ({"engaged": ["x"]}, "unknown stage 'engaged'"),
    ],
)
def test_bad_stage_maps_say_why(obj: dict[str, object], message: str) -> None:
    with pytest.raises(StageMapError, match=message.replace("(", r"\(")):
        StageMap.from_dict(obj)  # type: ignore[arg-type]


type_names = st.text(alphabet="abcdefgh.", min_size=1, max_size=6)


@given(st.lists(type_names, unique=True, max_size=12), st.data())
def test_any_partition_round_trips(types: list[str], data: st.DataObject) -> None:
    stages = [data.draw(st.sampled_from(list(Stage))) for _ in types]
    obj: dict[str, list[str]] = {s.value: [] for s in Stage}
    for event_type, stage in zip(types, stages, strict=True):
        obj[stage.value].append(event_type)
    stage_map = StageMap.from_dict(obj)
    for event_type, stage in zip(types, stages, strict=True):
        assert stage_map.stage_of(event_type) is stage
    assert StageMap.from_dict(stage_map.to_dict()) == stage_map
