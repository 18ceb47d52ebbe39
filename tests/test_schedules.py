"""The ``alternating``, ``joint`` and ``single_level`` schedules: levels per step, defaults, checks and state."""

from __future__ import annotations

import pytest

from panel2patch.manager import build
from panel2patch.plugins.schedules import Alternating, Joint, Single


def test_alternating_defaults_to_figure_panel_region_one_step_each():
    s = build("schedules", "alternating", {})
    assert [s.levels(i) for i in range(4)] == [["M"], ["P"], ["R"], ["M"]]
    assert s.state_dict() == {"schedule": "Alternating", "order": ["M", "P", "R"], "steps_per_phase": 1}


def test_alternating_refuses_an_empty_order_and_a_phase_under_one_step():
    with pytest.raises(ValueError, match="order is empty"):
        Alternating(order=[])
    with pytest.raises(ValueError, match="steps_per_phase must be >= 1, got 0"):
        Alternating(steps_per_phase=0)


def test_schedules_keep_their_own_copy_of_the_levels_they_were_given():
    order = ["P", "R"]
    alternating = Alternating(order=order)
    chosen = ["figure"]
    joint = Joint(levels=chosen)
    order.append("M")
    chosen.append("region")
    assert [alternating.levels(i) for i in range(3)] == [["P"], ["R"], ["P"]]
    assert joint.levels(0) == ["figure"]
    assert Alternating(order=("P", "R")).state_dict()["order"] == ["P", "R"]  # a plain list for the checkpoint
    assert Joint(levels=("R",)).state_dict() == {"schedule": "Joint", "levels": ["R"]}


def test_joint_levels_are_a_fresh_list_each_step():
    chosen = Joint(levels=["P"])
    chosen.levels(0).append("R")
    assert chosen.levels(1) == ["P"]
    every = Joint()
    every.bind(["figure", "panel"])
    every.levels(0).append("region")
    assert every.levels(1) == ["figure", "panel"]


def test_joint_without_levels_has_none_before_bind():
    assert Joint().levels(0) == []
    assert Joint().state_dict() == {"schedule": "Joint", "levels": None}


def test_single_level_defaults_to_panel():
    s = build("schedules", "single_level", {})
    assert s.levels(0) == ["panel"] and s.levels(99) == ["panel"]
    assert s.state_dict() == {"schedule": "Single", "level": "panel"}


@pytest.mark.parametrize(
    "saved, resumed",
    [
        (Alternating(order=["P", "R"], steps_per_phase=2), Alternating(order=["P", "R"], steps_per_phase=3)),
        (Joint(levels=["P"]), Joint(levels=["P", "R"])),
        (Joint(), Joint(levels=["P"])),
        (Single(level="panel"), Single(level="region")),
    ],
)
def test_resuming_with_other_settings_of_the_same_schedule_is_refused(saved, resumed):
    resumed.load_state_dict(resumed.state_dict())
    with pytest.raises(ValueError, match="resume with the checkpoint's schedule"):
        resumed.load_state_dict(saved.state_dict())


def test_resuming_from_another_schedule_with_the_same_settings_is_refused():
    state = {"schedule": "Cyclic", "order": ["M", "P", "R"], "steps_per_phase": 1}
    with pytest.raises(ValueError, match="trained with schedule Cyclic"):
        Alternating().load_state_dict(state)


def test_sequence_runs_its_phases_in_turn_and_the_last_to_the_end():
    s = build("schedules", "sequence", {"phases": [{"order": ["M", "P", "R"], "steps": 4}, {"order": ["P"]}]})
    assert [s.levels(i) for i in range(7)] == [["M"], ["P"], ["R"], ["M"], ["P"], ["P"], ["P"]]
    assert s.levels(10_000) == ["P"]
    joint = build("schedules", "sequence", {"phases": [{"order": ["M", "P"], "steps": 2, "joint": True},
                                                       {"order": ["R", "P"]}]})
    assert [joint.levels(i) for i in range(5)] == [["M", "P"], ["M", "P"], ["R"], ["P"], ["R"]]
    assert joint.state_dict()["phases"][0] == {"order": ["M", "P"], "steps": 2, "joint": True}


def test_sequence_defaults_to_multi_level_then_panel_only():
    s = build("schedules", "sequence", {})
    assert [s.levels(i) for i in (0, 1, 2, 999, 1000, 5000)] == [["M"], ["P"], ["R"], ["M"], ["P"], ["P"]]


@pytest.mark.parametrize("phases, message", [
    ([], "phases is empty"),
    ([{"order": ["M"], "steps": 3}], "the last phase runs to the end"),
    ([{"order": ["M"]}, {"order": ["P"]}], "phase 0 needs steps >= 1"),
    ([{"order": ["M"], "steps": 0}, {"order": ["P"]}], "phase 0 needs steps >= 1, got 0"),
    ([{"order": [], "steps": 2}, {"order": ["P"]}], "phase 0 has no order"),
    ([{"order": ["M"], "step": 2}, {"order": ["P"]}], "unknown keys \\['step'\\]"),
])
def test_sequence_refuses_phases_it_cannot_run(phases, message):
    from panel2patch.plugins.schedules import Sequence

    with pytest.raises(ValueError, match=message):
        Sequence(phases=phases)


def test_sequence_refuses_to_resume_with_other_phases():
    from panel2patch.plugins.schedules import Sequence

    saved = Sequence(phases=[{"order": ["M"], "steps": 2}, {"order": ["P"]}]).state_dict()
    with pytest.raises(ValueError, match="resume with the checkpoint's schedule"):
        Sequence(phases=[{"order": ["M"], "steps": 3}, {"order": ["P"]}]).load_state_dict(saved)
