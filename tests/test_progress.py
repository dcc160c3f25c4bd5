"""Live views derived from events: progress, time left and curves, checked against hand-computed values."""
import pytest

from distill_core.runs.progress import curves, messages, progress


def test_progress_uses_the_current_parts_step_rate():
    events = [
        {"t": 100.0, "kind": "step", "stage": "attack", "step": 50, "total": 50},
        {"t": 200.0, "kind": "log", "message": "starting"},
        {"t": 210.0, "kind": "step", "stage": "distill", "phase": "distill", "step": 10, "total": 100},
        {"t": 212.0, "kind": "step", "stage": "distill", "phase": "distill", "step": 30, "total": 100},
    ]
    p = progress(events)
    assert p.part == "distill · distill" and (p.unit, p.done, p.total) == ("step", 30, 100)
    assert p.fraction == pytest.approx(0.3)
    assert p.seconds_left == pytest.approx(7.0)  # 20 steps in 2 s, 70 to go


def test_progress_falls_back_to_epochs_and_is_unknown_before_any_rate():
    assert progress([{"t": 1.0, "kind": "log", "message": "x"}]) is None
    one = progress([{"t": 5.0, "kind": "epoch", "epoch": 1, "epochs": 8}])
    assert (one.unit, one.done, one.total, one.seconds_left, one.part) == ("epoch", 1, 8, None, "")
    two = progress([{"t": 5.0, "kind": "epoch", "epoch": 1, "epochs": 8},
                    {"t": 9.0, "kind": "epoch", "epoch": 3, "epochs": 8}])
    assert two.seconds_left == pytest.approx(10.0)  # 2 epochs in 4 s, 5 to go


def test_curves_group_epochs_by_part_in_percent_and_keep_the_starting_point():
    events = [
        {"t": 1, "kind": "epoch", "phase": "warmup", "epoch": 1, "epochs": 2, "loss": 5.0},
        {"t": 2, "kind": "epoch", "phase": "distill", "epochs": 80, "ca": 0.25, "asr": 0.1, "asr_all": 0.2},
        {"t": 3, "kind": "step", "phase": "distill", "step": 7, "total": 560, "loss": 9.0},
        {"t": 4, "kind": "epoch", "phase": "distill", "epoch": 1, "epochs": 80, "loss": 4.5, "at.layer1": 0.01,
         "kept": True},
    ]
    c = curves(events)
    assert list(c) == ["warmup", "distill"]
    assert c["warmup"] == [{"epoch": 1, "loss": 5.0}]
    assert c["distill"][0] == {"epoch": 0, "ca": 25.0, "asr": 10.0, "asr_all": 20.0}
    assert c["distill"][1] == {"epoch": 1, "loss": 4.5, "at.layer1": 0.01}
    assert messages(events + [{"kind": "log", "message": "hello"}]) == ["hello"]
