"""Training states and the bounded loss history."""

from __future__ import annotations

from sgt.domain.training import MAX_LOSS_HISTORY, TrainingState, append_loss


def test_the_states_are_the_documented_strings() -> None:
    assert [state.value for state in TrainingState] == [
        "untrained",
        "queued",
        "training",
        "converged",
    ]


def test_append_loss_adds_a_point() -> None:
    history = append_loss([], steps=10, train_loss=0.5, val_loss=0.7)
    assert history == [[10.0, 0.5, 0.7]]
    history = append_loss(history, steps=20, train_loss=0.25, val_loss=None)
    assert history == [[10.0, 0.5, 0.7], [20.0, 0.25, None]]


def test_append_loss_does_not_change_its_argument() -> None:
    original = [[1.0, 1.0, 1.0]]
    append_loss(original, steps=2, train_loss=0.5, val_loss=0.5)
    assert original == [[1.0, 1.0, 1.0]]


def test_the_history_stays_bounded_over_a_long_run_and_spans_it() -> None:
    history: list[list[float | None]] = []
    for step in range(1, 10_001):
        history = append_loss(history, steps=step, train_loss=1.0 / step, val_loss=2.0 / step)
        assert len(history) <= MAX_LOSS_HISTORY
    assert history[0][0] == 1.0, "the first point stays"
    assert history[-1] == [10_000.0, 1.0 / 10_000, 2.0 / 10_000], "the latest point is last"
    steps = [point[0] for point in history]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert len(history) >= MAX_LOSS_HISTORY // 2
    assert any(point[0] < 5000 for point in history[1:]), "older parts of the run stay visible"
