"""The command line as a user runs it: real subprocesses, the JSON summary on the last stdout line."""
import json

import pytest

from conftest import CIFAR10_MINI, cli, last_json, needs_cifar10_mini


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 2 min on the laptop profile
def test_demo_pretrain_beats_random_init_then_evaluates(tmp_path):
    out = tmp_path / "D"
    summary = last_json(cli("pretrain", "--preset", "demo", "--out", str(out), "--quiet"))
    # measured on a 2-core CPU: 0.481 vs 0.237 (+0.244); the assertion keeps headroom for other CPUs
    assert summary["ca_simclr"] - summary["ca_random_init"] >= 0.15, summary
    assert (out / "encoder.safetensors").is_file() and (out / "summary.json").is_file()
    assert json.loads((out / "config.json").read_text())["status"] == "done"
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"step", "epoch", "log"} <= {e["kind"] for e in events}

    ev = last_json(cli("evaluate", "--preset", "demo", "--encoder", str(out / "encoder.safetensors"),
                       "--trigger", "white", "--target", "priority", "--quiet"))
    assert ev["target"] == "priority" and all(0 <= ev[k] <= 1 for k in ("ca", "asr", "asr_all"))
    assert abs(ev["ca"] - summary["ca_simclr"]) < 0.02  # same encoder, same probe recipe


def test_bad_input_is_one_sentence_and_exit_2(tmp_path):
    proc = cli("evaluate", "--encoder", str(tmp_path / "missing.safetensors"), "--quiet", check=False)
    assert proc.returncode == 2 and "no checkpoint at" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("pretrain", "--epochs", "0", "--out", str(tmp_path / "r"), "--quiet", check=False)
    assert proc.returncode == 2 and "epochs: must be at least 1" in proc.stderr
    proc = cli("evaluate", "--target", "unicorn", "--quiet", check=False)
    assert proc.returncode == 2 and "class 'unicorn' does not exist" in proc.stderr


def test_evaluate_shipped_encoder_with_trigger_reports_asr():
    ev = last_json(cli("evaluate", "--trigger", "checkerboard:size=6", "--quiet"))
    assert ev["target"] == "priority" and {"ca", "asr", "asr_all"} <= set(ev)
    assert ev["asr"] < 0.5  # a clean encoder: the trigger alone does not send images to the target


@needs_cifar10_mini
@pytest.mark.slow
def test_same_commands_on_real_cifar10_sample(tmp_path):
    data = f"folder:{CIFAR10_MINI}"
    summary = last_json(cli("pretrain", "--preset", "demo", "--data", data, "--downstream", data,
                            "--n-train", "1024", "--epochs", "1", "--n-downstream-train", "1000",
                            "--n-downstream-test", "500",
                            "--out", str(tmp_path / "C"), "--quiet"))
    assert 0.1 <= summary["ca_simclr"] <= 1 and 0.1 <= summary["ca_random_init"] <= 1
    ev = last_json(cli("evaluate", "--preset", "demo", "--encoder", str(tmp_path / "C/encoder.safetensors"),
                       "--downstream", data, "--target", "truck", "--n-downstream-train", "1000",
                       "--n-downstream-test", "500", "--quiet"))
    assert ev["target"] == "truck" and 0.1 < ev["ca"] <= 1 and 0 <= ev["asr"] <= 1


def test_every_command_prints_its_help(capsys):
    """Help texts may hold '%' (argparse would read it as a format): every command's --help must print."""
    from distill_core.cli import main
    from distill_core.tasks import TASKS
    for name in [*TASKS, "resume", "datasets"]:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name
        assert "usage: python -m distill_core " + name in capsys.readouterr().out
