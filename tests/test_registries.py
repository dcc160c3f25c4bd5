"""A new attack, loss or defence is its registry entry and its docs rows: registered here in a fixture and nowhere
else, each is found in the CLI's help, a sweep's plan and checks, and the Attack and Distill pages' widgets; its
missing docs rows fail the docs test."""
import pytest
from streamlit.testing.v1 import AppTest

import test_docs
from conftest import ROOT
from distill_core.attacks import ATTACKS, Attack
from distill_core.attacks.badencoder import AttackConfig, BadEncoder
from distill_core.cli import main
from distill_core.distill import DEFENCES, LOSSES
from distill_core.distill.baselines import NamedDefence
from distill_core.distill.losses.at import AttentionTransfer
from distill_core.distill.losses.base import LossSpec
from distill_core.sweep.config import SweepConfig, validate
from distill_core.sweep.schedule import schedule
from distill_core.sweep.run import check_jobs

ATTACK = Attack("ghost", "A test's own attack.", AttackConfig, BadEncoder, label="Ghost attack", cite="Test, 2026",
                knobs=("momentum",))
LOSS = LossSpec("echo", "A test's own loss.", AttentionTransfer, label="Echo loss", cite="Test, 2026",
                source_weights={"layer4": 7.0}, source_note="layer4 at 7")
DEFENCE = NamedDefence("echo defence", "A test's own defence.", {"loss": "echo"}, lambda cfg: {"weights": "0,0,0,9"},
                       cite="Test, 2026")


@pytest.fixture
def dummies(monkeypatch):
    monkeypatch.setitem(ATTACKS, ATTACK.name, ATTACK)
    monkeypatch.setitem(LOSSES, LOSS.name, LOSS)
    monkeypatch.setitem(DEFENCES, DEFENCE.name, DEFENCE)


def help_of(capsys, *argv) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_new_entries_are_in_the_cli_help_and_checks(dummies, capsys):
    assert "ghost (Ghost attack)" in help_of(capsys, "attack")
    distill = help_of(capsys, "distill")
    assert "echo (Echo loss)" in distill and "echo defence" in distill
    assert "echo (Echo loss)" in help_of(capsys, "pipeline")
    assert main(["distill", "--loss", "nothing", "--encoder", "x"]) == 2  # unknown names are still refused
    assert "loss: unknown 'nothing'; choose" in capsys.readouterr().err


def test_new_entries_make_a_sweeps_cells(dummies, tmp_path):
    cfg = SweepConfig(preset="demo", pretrain_data="shapes", downstream="signs", attacks="ghost,badencoder",
                      teachers="finetuned", students="scratch", losses="echo,at", seeds="0")
    validate(cfg)
    jobs = schedule(cfg, tmp_path)
    check_jobs(jobs)  # every stage's and cell's settings pass their task's checks
    cells = [j for j in jobs if j.cell]
    assert {(j.cell["attack"], j.cell["loss"]) for j in cells} == {
        ("ghost", "echo"), ("ghost", "at"), ("badencoder", "echo"), ("badencoder", "at")}
    assert any(j.task == "attack" and j.config.attack == "ghost" for j in jobs)


def test_new_entries_are_on_the_pages(dummies):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/attack.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Ghost attack" in at.radio(key="attack:name").options
    at.radio(key="attack:name").set_value("ghost").run()
    assert any("Ghost attack (Test, 2026): A test's own attack." in c.value for c in at.caption)
    assert at.number_input(key="attack:demo:ghost:momentum").value == pytest.approx(0.9)  # its knob, from its config

    at.switch_page("app_pages/distill.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "echo" in at.radio(key="distill:loss").options
    assert "echo defence" in at.selectbox(key="distill:defence").options
    at.selectbox(key="distill:defence").set_value("echo defence").run()
    assert at.radio(key="distill:loss").value == "echo"
    assert [n.value for n in at.number_input][:4] == [0.0, 0.0, 0.0, 9.0]  # the defence's own weights
    assert any("Echo loss" in c.value or "`echo` (Test, 2026)" in c.value for c in at.caption)


def test_a_new_entry_without_docs_rows_fails_the_docs_test(dummies):
    for doc in ("fidelity.md", "methods.md"):
        assert set(test_docs.unnamed(doc)) == {"ghost", "echo", "echo defence"}
