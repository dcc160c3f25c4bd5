"""Bad settings are refused before any work starts, with the field named, by each task's checks and by
the command line (exit status 2, one line naming the field, a run record holding nothing but the refusal)."""
import json

import pytest

from distill_core.cli import main
from distill_core.pipeline import PipelineConfig, stage_config
from distill_core.runs.store import read_events
from distill_core.tasks import TASKS, make_config

VALIDATE = {name: TASKS[name].check for name in ("attack", "distill", "pretrain")}  # its registries', then its own
validate_attack = VALIDATE["attack"]
NEEDS = {"distill": {"encoder": "runs/some-attack"}}  # what a task cannot start without

BAD = [  # task, setting, value, the message's start
    ("attack", "epochs", -1, "epochs: must be at least 1, not -1"),
    ("attack", "shadow_fraction", 1.5, "shadow_fraction: must be in (0, 1], not 1.5"),
    ("attack", "shadow_fraction", 0.0, "shadow_fraction: must be in (0, 1], not 0.0"),
    ("attack", "shadow_fraction", float("nan"), "shadow_fraction: must be a finite number, not nan"),
    ("attack", "target", "unicorn", "target: class 'unicorn' does not exist in signs; classes: x-mark,"),
    ("attack", "target", "10", "target: class 10 does not exist: signs has classes 0..9"),
    ("attack", "trigger", "white:size=40", "trigger: a 40-pixel trigger does not fit in a 32-pixel image."),
    ("attack", "trigger", "sparkle", "trigger: unknown trigger 'sparkle'"),
    ("attack", "downstream", "imagenet", "downstream: unknown dataset 'imagenet'"),
    ("attack", "log_every", 0, "log_every: must be at least 1, not 0"),
    ("distill", "epochs", -5, "epochs: must be at least 1, not -5"),
    ("distill", "clean_fraction", 2.0, "clean_fraction: must be in (0, 1], not 2.0"),
    ("distill", "target", "unicorn", "target: class 'unicorn' does not exist in signs"),
    ("distill", "trigger", "checkerboard:size=33", "trigger: a 33-pixel trigger does not fit in a 32-pixel image."),
    ("distill", "temperature", 0.0, "temperature: must be positive, not 0.0"),
    ("distill", "weights", "1,1,1,inf", "weights: must be finite and not negative"),
    ("distill", "embedding_weight", -1.0, "embedding_weight: must be finite and not negative"),
    ("distill", "teacher_lr", -1.0, "teacher_lr: cannot be negative, not -1.0"),
    ("distill", "checkpoint_every", -1.0, "checkpoint_every: cannot be negative, not -1.0"),
    ("pretrain", "epochs", -1, "epochs: must be at least 1, not -1"),
    ("pretrain", "epochs", float("inf"), "epochs: must be a whole number, not inf"),
    ("pretrain", "data", "folder:/nowhere", "data: folder dataset '/nowhere' has no 'train/' folder"),
    ("pretrain", "log_every", 0, "log_every: must be at least 1, not 0"),
]


@pytest.mark.parametrize("task, name, value, message", BAD)
def test_validate_names_the_bad_field(task, name, value, message):
    cfg = make_config(task, "demo", {**NEEDS.get(task, {}), name: value})
    with pytest.raises(ValueError) as err:
        VALIDATE[task](cfg)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("task", VALIDATE)
def test_the_presets_pass(task):
    for preset in ("demo", "paper"):
        VALIDATE[task](make_config(task, preset, NEEDS.get(task)))


def test_the_target_of_a_folder_set_is_one_of_its_class_folders(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
    cfg = make_config("attack", "demo", {"downstream": f"folder:{tmp_path}", "target": "dog"})
    validate_attack(cfg)
    for target, message in (("cow", "target: class 'cow' does not exist"),
                            ("", "target: 'folder:")):  # a folder has no usual target: the user names one
        with pytest.raises(ValueError, match=message):
            validate_attack(make_config("attack", "demo", {"downstream": f"folder:{tmp_path}", "target": target}))


def test_the_pipeline_checks_every_stage_before_the_first(tmp_path):
    cfg = PipelineConfig(preset="demo", pretrain_data="shapes", downstream="signs", target="unicorn")
    with pytest.raises(ValueError, match="target: class 'unicorn'"):
        validate_attack(stage_config(cfg, "attack"))


CLI = [  # the command line's flags for some of the bad settings above
    ("attack", ["--target", "unicorn"], "target: class 'unicorn' does not exist"),
    ("attack", ["--trigger", "white:size=40"], "trigger: a 40-pixel trigger does not fit"),
    ("attack", ["--epochs", "-1"], "epochs: must be at least 1"),
    ("attack", ["--shadow-fraction", "1.5"], "shadow_fraction: must be in (0, 1]"),
    ("distill", ["--encoder", "x", "--target", "unicorn"], "target: class 'unicorn' does not exist"),
    ("distill", ["--encoder", "x", "--trigger", "white:size=40"], "trigger: a 40-pixel trigger does not fit"),
    ("pipeline", ["--target", "unicorn"], "target: class 'unicorn' does not exist"),
    ("pipeline", ["--trigger", "white:size=40"], "trigger: a 40-pixel trigger does not fit"),
]


@pytest.mark.parametrize("task, flags, message", CLI)
def test_the_command_line_refuses_with_exit_2_before_any_work(tmp_path, capsys, task, flags, message):
    out = tmp_path / "run"
    assert main([task, "--quiet", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    record = json.loads((out / "config.json").read_text())
    events = read_events(out)
    assert record["status"] == "failed" and message in record["error"]
    assert [e["kind"] for e in events] == ["log"] and events[0]["level"] == "error"  # the refusal, nothing else
    assert not any(out.glob("*.safetensors")) and not any(p.is_dir() for p in out.iterdir())  # no weights, no stages
