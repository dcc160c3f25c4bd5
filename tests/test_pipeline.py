"""The whole story from the command line: attack, then distillation, as a user runs it."""
import json

import pytest

from conftest import cli, last_json
from distill_core.runs.progress import job_plan, part, progress

FIGURES = {"ca", "asr", "asr_all"}


def check_shape(s: dict) -> None:
    assert {"preset", "attack", "teacher", "student", "loss", "clean", "poisoned", "distilled", "seconds"} <= set(s)
    for key in ("clean", "poisoned", "distilled"):
        assert set(s[key]) == FIGURES and all(0 <= v <= 1 for v in s[key].values()), s[key]
    assert s["seconds"]["total"] >= s["seconds"]["attack"] + s["seconds"]["distill"]


def test_a_tiny_pipeline_runs_both_stages_and_keeps_their_records(tmp_path):
    out = tmp_path / "P"
    s = last_json(cli("pipeline", "--preset", "demo", "--attack-epochs", "1", "--n-shadow", "256", "--distill-epochs",
                      "1", "--teacher-epochs", "1", "--warmup-epochs", "1", "--n-clean", "256",
                      "--n-downstream-train", "300", "--n-downstream-test", "200", "--out", str(out), "--quiet"))
    check_shape(s)  # what it removes at the demo's budget: test_demo_pipeline_brings_asr_near_the_clean_encoders
    assert (s["preset"], s["attack"], s["teacher"], s["student"], s["loss"]) == (
        "demo", "badencoder", "finetuned", "warmup", "at")
    for stage in ("attack", "distill"):
        assert json.loads((out / stage / "config.json").read_text())["status"] == "done"
    assert (out / "distill" / "encoder.safetensors").is_file() and (out / "distill" / "best.safetensors").is_file()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"attack", "distill"} <= {e.get("stage") for e in events}
    # the plan sent first names every part that ran, in order, with the steps each ran
    ran = {part(e): e["total"] for e in events if e["kind"] == "step"}
    assert [(p["part"], p["steps"]) for p in job_plan(events)] == list(ran.items()) == [
        ("attack", 2), ("distill · teacher", 2), ("distill · warmup", 2), ("distill · distill", 2)]
    assert progress(events).fraction == 1.0


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the demo story: about 2.5 min on the laptop profile
def test_demo_pipeline_brings_asr_near_the_clean_encoders(demo_story):
    _, s = demo_story
    check_shape(s)
    # Seed 0's purified ASR depends on the machine's rounding: under the 80-epoch recipe without the embedding
    # term 2.1% (fp32, AVX2), 6.9-9.3% (bf16, AVX512-BF16), 14.0% (the loss comparison's cell and a CI run);
    # 6.1% (bf16) with the stride-1 encoder's 40-epoch recipe, against ASR-B 5.2-5.3%; with today's stride-2
    # encoder 0.4% (fp32) and 1.9% (bf16), against ASR-B 2.7%, and with its light teacher (5 epochs at 5e-4) 1.6%
    # (fp32) (docs/results.md). So this checks
    # that the defence brings the attack's 99% to within 10 points of the clean encoder, not the demo's target of
    # ASR-B + 5, which seed 0 misses on some machines; a poisoned-init student (28%) fails it.
    assert s["poisoned"]["asr"] >= 0.9
    assert s["distilled"]["asr"] <= s["clean"]["asr"] + 0.10
    assert s["distilled"]["ca"] >= s["poisoned"]["ca"] - 0.05


def test_pipeline_refuses_an_unknown_loss_before_any_work(tmp_path):
    proc = cli("pipeline", "--preset", "demo", "--loss", "l2", "--out", str(tmp_path / "bad"), "--quiet", check=False)
    assert proc.returncode == 2 and "loss" in proc.stderr and "Traceback" not in proc.stderr
