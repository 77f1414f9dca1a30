"""The retraining policy's memory as a pure function: one retraining per drift episode."""

from __future__ import annotations

import pytest

from training_pipeline.automation.drift_episodes import (
    DriftEvaluation,
    DriftMemory,
    decide,
)

HOUR = 3600.0


def error(id_: int, data: str | None = "day-1") -> DriftEvaluation:
    return DriftEvaluation(id_, "error", data)


def test_the_first_drift_at_error_retrains_and_remembers_the_data_and_time():
    decision = decide(DriftMemory(), error(1), now=1000.0, cooldown_s=HOUR)

    assert decision.retrain
    assert decision.memory == DriftMemory(evaluation=1, retrained_at=1000.0, retrained_on="day-1")


@pytest.mark.parametrize("severity", ["none", "warn"])
def test_drift_below_error_never_retrains_and_forgets_nothing(severity):
    memory = DriftMemory(evaluation=1, retrained_at=1000.0, retrained_on="day-1")

    decision = decide(memory, DriftEvaluation(2, severity, "day-2"), now=9e9, cooldown_s=0)

    assert not decision.retrain
    assert decision.memory == DriftMemory(2, 1000.0, "day-1")


def test_drift_on_the_data_already_retrained_for_waits_for_new_data():
    memory = DriftMemory(evaluation=1, retrained_at=1000.0, retrained_on="day-1")

    decision = decide(memory, error(2, "day-1"), now=1000.0 + 10 * HOUR, cooldown_s=HOUR)

    assert not decision.retrain and "waiting for new data" in decision.reason
    assert decision.memory.evaluation == 2


def test_drift_whose_data_was_not_recorded_is_not_taken_for_new_data():
    memory = DriftMemory(evaluation=1, retrained_at=1000.0, retrained_on="day-1")

    assert not decide(memory, error(2, None), now=9e9, cooldown_s=0).retrain


def test_new_data_within_the_cool_down_waits_and_retrains_when_it_ends():
    memory = DriftMemory(evaluation=1, retrained_at=1000.0, retrained_on="day-1")

    early = decide(memory, error(2, "day-2"), now=1000.0 + HOUR / 2, cooldown_s=HOUR)
    later = decide(early.memory, error(2, "day-2"), now=1000.0 + HOUR, cooldown_s=HOUR)

    assert not early.retrain and "cool-down lasts until" in early.reason
    assert early.memory == memory  # the evaluation is looked at again next time
    assert later.retrain
    assert later.memory == DriftMemory(2, 1000.0 + HOUR, "day-2")


def test_an_evaluation_already_decided_on_is_not_decided_again():
    memory = DriftMemory(evaluation=5)

    decision = decide(memory, error(5), now=0.0, cooldown_s=0)

    assert not decision.retrain and decision.memory is memory


@pytest.mark.parametrize(
    ("cursor", "memory"),
    [
        (None, DriftMemory()),
        ("", DriftMemory()),
        ("17", DriftMemory(evaluation=17)),
        (DriftMemory(3, 5.0, "x").to_cursor(), DriftMemory(3, 5.0, "x")),
    ],
)
def test_the_memory_round_trips_through_the_sensor_cursor(cursor, memory):
    assert DriftMemory.from_cursor(cursor) == memory
