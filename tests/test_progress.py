"""Live views derived from events: progress, time left and curves, checked against hand-computed values."""
import pytest

from distill_core.runs.progress import curves, messages, progress

PLAN = {"t": 0.0, "kind": "plan", "parts": [
    {"part": "attack", "steps": 10, "cost": 3}, {"part": "distill · warmup", "steps": 10, "cost": 1},
    {"part": "distill · distill", "steps": 20, "cost": 2}]}  # work 30, 10 and 40: 80 in all


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


def test_a_planned_job_shows_progress_and_time_left_for_the_whole_job():
    events = [PLAN, {"t": 10.0, "kind": "step", "stage": "attack", "step": 5, "total": 10},
              {"t": 20.0, "kind": "step", "stage": "attack", "step": 10, "total": 10},
              {"t": 25.0, "kind": "step", "stage": "distill", "phase": "warmup", "step": 5, "total": 10}]
    p = progress(events)
    assert (p.part, p.done, p.total, p.place) == ("distill · warmup", 5, 10, (2, 3))
    assert p.fraction == pytest.approx((30 + 5) / 80)
    # 20 units of work (attack 15, warm-up 5) in 15 s; 45 to go
    assert p.seconds_left == pytest.approx(45 * 15 / 20)
    # a stage's own plan, forwarded inside the pipeline, is not the job's
    nested = [{**PLAN, "stage": "distill", "parts": [{"part": "distill", "steps": 20, "cost": 2}]}]
    assert progress(events[:1] + nested + events[1:]).fraction == pytest.approx(35 / 80)


def test_a_part_that_ran_no_steps_is_passed_and_costs_no_time():
    events = [PLAN, {"t": 10.0, "kind": "step", "stage": "attack", "step": 5, "total": 10},
              {"t": 20.0, "kind": "step", "stage": "attack", "step": 10, "total": 10},  # then a reused warm-up
              {"t": 30.0, "kind": "step", "stage": "distill", "phase": "distill", "step": 10, "total": 20}]
    p = progress(events)
    assert p.fraction == pytest.approx((30 + 10 + 20) / 80) and p.place == (3, 3)
    assert p.seconds_left == pytest.approx(20 * 20 / 35)  # 15 + 20 units in 20 s, the warm-up's 10 not counted


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


def test_the_status_line_names_the_part_and_gives_the_whole_jobs_share_and_time_left():
    from distill_core.runs.jobs import Job
    from webui.jobs import status_line
    job = Job("j1", "pipeline", None, "tab", "demo", "cpu", None, status="running", events=[
        PLAN, {"t": 10.0, "kind": "step", "stage": "attack", "step": 5, "total": 10},
        {"t": 20.0, "kind": "step", "stage": "attack", "step": 10, "total": 10},
        {"t": 25.0, "kind": "step", "stage": "distill", "phase": "warmup", "step": 5, "total": 10}])
    assert status_line(job) == ("Running Distillation · warming up the student (part 2 of 3): step 5 of 10 · "
                                "44% of the job done, about 34 s left")


def test_queued_views_poll_less_the_further_back_they_wait(monkeypatch):
    from types import SimpleNamespace

    import webui.jobs as jobs
    monkeypatch.setattr(jobs, "manager", lambda: SimpleNamespace(position=lambda job: job.place))
    job = lambda status, place=0: SimpleNamespace(status=status, place=place)  # noqa: E731
    assert [jobs.poll_seconds(job("queued", p)) for p in (1, 2, 3, 4, 7, 8, 20)] == [3, 6, 6, 12, 12, 24, 24]
    assert jobs.poll_seconds(job("running")) == 2 and jobs.poll_seconds(job("done")) is None
