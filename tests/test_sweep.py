"""The sweep: its grid and settings are checked, its plan shares every stage it can, its tables hold the
hand-computed means, and the tiny all-combination sweep runs, survives a kill without redoing finished
cells, and gives the same table on a local Ray instance."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from distill_core.config import read_settings_file
from distill_core.sweep import table
from distill_core.sweep.config import SweepConfig, levels, validate
from distill_core.sweep.schedule import schedule
from distill_core.tasks import make_config

TINY = dict(device="cpu", attack_epochs=1, n_shadow=128, distill_epochs=1, teacher_epochs=1, warmup_epochs=1,
            n_clean=64, n_downstream_train=200, n_downstream_test=100,
            settings=json.dumps({"distill": {"batch_size": 32, "eval_every": 0, "prune_epochs": 1},
                                 "attack": {"eval_every": 0}}))


def sweep_config(**kw) -> SweepConfig:
    return make_config("sweep", "demo", {**TINY, **kw})


@pytest.mark.parametrize("field,value,says", [
    ("teachers", "finetuned,teacher9", "unknown 'teacher9'"), ("losses", "at,at", "named twice"),
    ("seeds", "0,one", "whole numbers"), ("attacks", "", "at least one"), ("downstreams", "nope", "downstreams"),
    ("settings", "{bad", "not valid JSON"), ("settings", '{"distil": {}}', "unknown stage 'distil'"),
    ("settings", '{"distill": {"lr2": 1}}', "no field 'lr2'"), ("settings", '[1]', "JSON object"),
    ("placements", "everywhere", "unknown 'everywhere'"), ("placements", "source,calibrated", "unknown 'calibrated'"),
    ("placements", "source+calibrated", "'source\\+calibrated' is two settings now: placements: source and "
                                        "calibrated: source"),
    ("calibrated", "everywhere", "calibrated: unknown 'everywhere'"),
])
def test_bad_grids_are_refused_naming_the_field(field, value, says):
    with pytest.raises(ValueError, match=says) as e:
        validate(sweep_config(**{field: value}))
    assert str(e.value).startswith(field)


def test_a_grid_file_reads_lists_and_settings_and_flags_win(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("teachers: [finetuned, pruned]\nseeds: [0, 1, 2]\nsettings:\n  distill: {lr: 0.001}\n")
    values = read_settings_file(str(grid), SweepConfig)
    assert values == {"teachers": "finetuned,pruned", "seeds": "0,1,2", "settings": '{"distill": {"lr": 0.001}}'}
    cfg = make_config("sweep", "demo", values)
    assert levels(cfg)["seed"] == [0, 1, 2] and levels(cfg)["downstream"] == ["signs"]
    (tmp_path / "bad.yaml").write_text("teacher: [finetuned]\n")
    with pytest.raises(ValueError, match="no setting named 'teacher'"):
        read_settings_file(str(tmp_path / "bad.yaml"), SweepConfig)
    from distill_core.cli import build_parser
    args = build_parser().parse_args(["sweep", "--grid", str(grid), "--seeds", "5"])
    assert args.settings_file == str(grid) and args.seeds == "5"


def test_the_plan_computes_each_shared_stage_once(tmp_path):
    cfg = sweep_config(attacks="badencoder,drupe", teachers="poisoned,finetuned,pruned,ensemble",
                       students="scratch,warmup", losses="at,finetune-only", seeds="0,1")
    jobs = schedule(cfg, tmp_path)
    by_task = {t: [j for j in jobs if j.task == t] for t in ("pretrain", "attack", "prepare", "distill")}
    assert by_task["pretrain"] == []  # the demo preset ships its clean encoder
    assert len(by_task["attack"]) == 2 and len(by_task["distill"]) == 2 * 4 * 2 * 2 * 2
    # one warm-up student per seed (shared by both attacks), one fine-tuned and one pruned teacher per attack and seed
    assert sorted(j.key for j in by_task["prepare"] if "warmup" in j.key) == ["stages/warmup-s0", "stages/warmup-s1"]
    assert len([j for j in by_task["prepare"] if "warmup" not in j.key]) == 2 * 2 * 2
    keys = {j.key for j in jobs}
    assert all(set(j.needs) <= keys for j in jobs) and len(keys) == len(jobs)
    cell = {j.key: j for j in by_task["distill"]}
    assert cell["cells/drupe-signs-ensemble-warmup-at-source-s1"].needs == (
        "stages/attack-drupe-signs", "stages/finetuned-drupe-signs-s1", "stages/warmup-s1")
    assert cell["cells/drupe-signs-pruned-scratch-finetune-only-source-s0"].needs == ("stages/attack-drupe-signs",)
    c = cell["cells/badencoder-signs-pruned-warmup-at-source-s0"].config
    assert (c.teacher, c.student, c.loss, c.seed, c.score_before) == ("pruned", "warmup", "at", 0, False)
    scored = {j.key for j in by_task["prepare"] if j.config.score_before}  # fine-tuning, fine-pruning alone
    assert scored == {f"stages/{t}-{a}-signs-s{s}" for t in ("finetuned", "pruned") for a in ("badencoder", "drupe")
                      for s in (0, 1)}
    assert c.reuse == str(tmp_path.resolve() / "prepared") and c.epochs == 1 and c.batch_size == 32


def test_a_cell_carries_the_figures_of_its_own_teacher_scored_alone(tmp_path):
    """From the plan's own jobs: the fine-tuned cell gets its fine-tuned stage's figures, the ensemble cell none
    (its teacher is not its fine-tuned member), whatever the attack stage it also needs says."""
    from distill_core.sweep.run import teacher_scores
    jobs = schedule(sweep_config(teachers="finetuned,ensemble", losses="at", seeds="0"), tmp_path)
    by_key = {j.key: j for j in jobs}
    scored = {"ca": 0.9, "asr": 0.3}
    results = {j.key: {"status": "done", "summary": {"teacher_scores": scored} if j.task == "prepare" else
                       {"teacher_scores": {"ca": 0.0, "asr": 1.0}}} for j in jobs}  # an attack's summary: not a teacher
    cells = {j.config.teacher: j for j in jobs if j.task == "distill"}
    assert teacher_scores(cells["finetuned"], results, by_key) == scored
    assert teacher_scores(cells["ensemble"], results, by_key) is None


def rows_for(values):
    """Rows over two seeds: `values[(teacher, loss)] = (ca seed 0, ca seed 1)`, student warmup."""
    return [{"attack": "badencoder", "downstream": "signs", "teacher": t, "student": "warmup", "loss": l,
             "placement": "source", "defence": "", "seed": s,
             "target": "priority", "ca": v[s], "asr": 100 - v[s], "asr_all": 0.0, "clean_ca": 90.0, "asr_b": 5.0,
             "ba": 89.0, "asr_before": 99.0, "teacher_ca": None, "teacher_asr": None} for (t, l), v in values.items() for s in (0, 1)]


def test_tables_hold_the_hand_computed_means_and_spreads():
    rows = rows_for({("finetuned", "at"): (80.0, 84.0), ("finetuned", "sp"): (70.0, 70.0),
                     ("poisoned", "at"): (60.0, 66.0), ("poisoned", "sp"): (50.0, 52.0)})
    by_teacher = table.factor_table(rows, "teacher")  # the loss held at the study's AT
    assert by_teacher[0]["teacher"] == "finetuned"
    assert by_teacher[0]["badencoder/signs CA"] == {"mean": 82.0, "std": 2.83, "n": 2}  # stdev(80, 84) = 2.828
    assert by_teacher[1]["badencoder/signs ASR"] == {"mean": 37.0, "std": 4.24, "n": 2}
    assert table.fmt(by_teacher[0]["badencoder/signs CA"]) == "82.0 ± 2.8"
    by_loss = table.factor_table(rows, "loss")  # the teacher held at the study's fine-tuned one
    assert [r["badencoder/signs CA"]["mean"] for r in by_loss] == [82.0, 70.0]
    ys, xs, m = table.heatmap(rows, "teacher", "loss", "ca", "badencoder", "signs")
    assert ys == ["finetuned", "poisoned"] and xs == ["at", "sp"] and m == [[82.0, 70.0], [63.0, 51.0]]
    pooled = [r for r in rows if r["teacher"] == "poisoned"]  # no fine-tuned teacher: pooled over teachers
    assert table.factor_table(pooled, "loss")[0]["badencoder/signs CA"]["mean"] == 63.0
    md = table.markdown(by_teacher).splitlines()
    assert md[0] == "| teacher | badencoder/signs CA | badencoder/signs ASR |" and "| finetuned | 82.0 ± 2.8 |" in md[2]
    assert table.attacks_table(rows) == [{"attack": "badencoder", "downstream": "signs", "target": "priority",
                                          "clean_ca": 90.0, "asr_b": 5.0, "ba": 89.0, "asr_before": 99.0}]


def test_placements_side_by_side_rank_the_losses_under_each():
    rows = [{**r, "placement": placement, "ca": r["ca"] + shift, "asr": r["asr"] + shift}
            for placement, shift in (("source", 0.0), ("authors", 30.0))
            for r in rows_for({("finetuned", "at"): (80.0, 84.0), ("finetuned", "sp"): (70.0, 70.0)})]
    rows += [{**r, "placement": "source"} for r in rows_for({("finetuned", "finetune-only"): (90.0, 90.0)})]
    side = table.placement_table(rows)  # ASR: at 18, sp 30, fine-tuning 10 (source); at 48, sp 60 (authors)
    assert [line["loss"] for line in side] == ["at", "sp", "finetune-only"]
    assert [line["source rank"] for line in side] == [2, 3, 1] and [line["authors rank"] for line in side] == [2, 3, 1]
    assert side[0]["authors · badencoder/signs CA"] == {"mean": 112.0, "std": 2.83, "n": 2}
    assert side[2]["authors · badencoder/signs ASR"]["mean"] == 10.0  # no teacher term: the same under every one
    ys, xs, m = table.heatmap(rows, "loss", "placement", "asr", "badencoder", "signs")
    assert (ys, xs, m) == (["at", "sp", "finetune-only"], ["source", "authors"], [[18.0, 48.0], [30.0, 60.0], [10.0, 10.0]])
    assert table.factor_table(rows, "loss")[0]["badencoder/signs ASR"]["mean"] == 18.0  # held at the first placement
    assert "by_placement" in table.summary_tables(rows) and "by_placement" not in table.summary_tables(rows[:4])


def test_named_defences_stand_beside_the_studys_choice():
    rows = rows_for({("finetuned", "at"): (80.0, 84.0), ("finetuned", "finetune-only"): (60.0, 62.0)})
    for r in rows:
        r["defence"] = "fine-tuning" if r["loss"] == "finetune-only" else ""
    summary = {"attack": "badencoder", "target": "priority", "clean": {"ca": 0.9, "asr": 0.05},
               "poisoned": {"ca": 0.89, "asr": 0.99}, "teacher_scores": {"ca": 0.7, "asr": 0.2, "asr_all": 0.25}}
    pruned = {"attack": "badencoder", "downstream": "signs", "teacher": "pruned", "student": "", "loss": "",
              "placement": "", "seed": 0}
    row = table.cell_row(pruned, summary, "h", "stages/pruned-badencoder-signs-s0", encoder="teacher_scores")
    assert (row["defence"], row["ca"], row["asr"], row["ba"], row["asr_b"]) == ("fine-pruning", 70.0, 20.0, 89.0, 5.0)
    lines = {line["defence"]: line for line in table.defences_table([*rows, row])}
    assert list(lines) == ["distillation (study's choice)", "fine-tuning", "fine-pruning"]
    assert lines["fine-tuning"]["badencoder/signs CA"] == {"mean": 61.0, "std": 1.41, "n": 2}
    assert lines["fine-pruning"]["badencoder/signs ASR"] == {"mean": 20.0, "std": 0.0, "n": 1}
    assert table.factor_table([*rows, row], "teacher")[0]["teacher"] == "finetuned" and len(
        table.factor_table([*rows, row], "teacher")) == 1  # the pruned teacher alone is no distillation
    from distill_core.sweep.heatmaps import PAIRS, pairs  # its blank placement is no second placement
    assert pairs([*rows, row]) == PAIRS and "by_placement" not in table.summary_tables([*rows, row])


def grid_file(path: Path, **kw) -> Path:
    values = {**TINY, "settings": json.loads(TINY["settings"]), "attacks": ["drupe"], "seeds": [0], **kw}
    path.write_text(json.dumps(values))  # JSON is YAML too
    return path


def sweep_cli(grid: Path, out: Path, *flags: str) -> subprocess.Popen:
    """The CLI as a researcher runs it, with one thread: a Ray task on one CPU gets one thread, and the same
    thread count is what makes two runs' figures identical bit for bit."""
    return subprocess.Popen([sys.executable, "-m", "distill_core", "sweep", "--grid", str(grid), "--out", str(out),
                             "--quiet", *flags], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def cell_records(out: Path) -> dict[str, dict]:
    recs = {}
    for path in (out / "cells").glob("*/config.json"):
        try:
            recs[path.parent.name] = json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    return recs


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory):
    """The tiny all-combination sweep (DRUPE x 4 teachers x 3 students x 6 losses), killed once about half its
    cells are done, then rerun into the same folder."""
    tmp = tmp_path_factory.mktemp("sweep")
    grid, out = grid_file(tmp / "grid.yaml"), tmp / "sweep"
    proc = sweep_cli(grid, out)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = {k: r for k, r in cell_records(out).items() if r["status"] == "done"}
        if len(done) >= 30:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {k: r for k, r in cell_records(out).items() if r["status"] == "done"}
    unfinished = [k for k, r in cell_records(out).items() if r["status"] != "done"]
    killed_record = json.loads((out / "config.json").read_text())
    rerun = sweep_cli(grid, out)
    stdout, stderr = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, stderr[-3000:]
    return out, before, unfinished, killed_record, json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.timeout(900)  # its sweep, killed and rerun: about 1.5 min on the laptop profile
def test_tiny_sweep_over_every_combination_resumes_without_redoing_cells(killed_and_rerun):
    from distill_core.runs.store import load_run
    out, before, unfinished, killed_record, summary = killed_and_rerun
    assert 30 <= len(before) < 72 and killed_record["status"] == "running"
    rows = json.loads((out / "results.json").read_text())
    assert summary["cells"] == 72 and summary["rows"] == len(rows) == 74  # and the two teachers alone
    assert summary["cells_done_before"] == len(before)
    combos = {(r["attack"], r["teacher"], r["student"], r["loss"]) for r in rows}
    assert len(combos) == 74
    after = cell_records(out)
    for key, rec in before.items():  # finished cells were left alone
        assert after[key]["created"] == rec["created"] and after[key]["finished"] == rec["finished"], key
    assert len(unfinished) <= 1
    for key in unfinished:  # the cell the kill cut short started over, cleanly: one run's events, not two
        assert after[key]["status"] == "done" and after[key].get("resumed") is None
        assert (out / "cells" / key / "events.jsonl").read_text().count("clean images of") == 1
    assert load_run(out)["status"] == "done"
    for name in ("results.csv", "tables.md", "tables.json", "tables/by_teacher.csv", "tables/by_loss.csv"):
        assert (out / name).is_file(), name
    assert len((out / "results.csv").read_text().splitlines()) == 75
    assert all(0 <= r["ca"] <= 100 and 0 <= r["asr"] <= 100 for r in rows)
    named = {(r["teacher"], r["student"], r["loss"]): r["defence"] for r in rows}
    # NAD's own weights and epochs are not the sweep's: its parts at the sweep's placement are the earlier form
    assert named["finetuned", "poisoned-init", "at"] == "NAD (at the run's placement)"
    assert named["pruned", "poisoned-init", "at"] == "" and named["finetuned", "", ""] == "fine-tuned teacher alone"
    assert named["pruned", "", ""] == "fine-pruning" and (out / "tables/defences.csv").is_file()
    cell = next(r for r in rows if (r["teacher"], r["student"], r["loss"]) == ("finetuned", "warmup", "at"))
    alone = next(r for r in rows if r["teacher"] == "finetuned" and not r["loss"] and r["attack"] == cell["attack"])
    assert (cell["teacher_ca"], cell["teacher_asr"]) == (alone["ca"], alone["asr"])  # its teacher, beside it


@pytest.mark.slow
def test_a_sweep_on_local_ray_gives_the_local_table(killed_and_rerun, tmp_path):
    pytest.importorskip("ray")
    local = {r["run"]: r for r in json.loads((killed_and_rerun[0] / "results.json").read_text())}
    grid = grid_file(tmp_path / "grid.yaml", attacks=["drupe"], teachers=["finetuned", "pruned"],
                     students=["warmup", "poisoned-init"], losses=["at"])
    proc = sweep_cli(grid, tmp_path / "ray", "--ray", "local")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    rows = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert len(rows) == 6  # four cells and the two teachers alone (fine-tuning and fine-pruning)
    same = ("target", "clean_ca", "asr_b", "ba", "asr_before", "ca", "asr", "asr_all", "config_hash")
    for row in rows:
        assert {k: row[k] for k in same} == {k: local[row["run"]][k] for k in same}, row["run"]


def test_results_load_from_json_or_csv_and_other_files_are_refused(tmp_path):
    from distill_core.sweep.heatmaps import export, heatmap_figure, load_results
    rows = rows_for({("finetuned", "at"): (80.0, 84.0), ("poisoned", "at"): (60.0, 66.0)})
    for row in rows:
        row.update(seconds=1.0, distill_seconds=0.5, config_hash="x", run="cells/x")
    (tmp_path / "results.csv").write_text(table.to_csv(rows, table.COLUMNS))
    assert load_results(tmp_path / "results.csv") == load_results(json.dumps(rows).encode(), "results.json") == rows
    with pytest.raises(ValueError, match="not a sweep's results table: it has no"):
        load_results(b"a,b\n1,2\n", "results.csv")
    for bad, name in ((b"[]", "results.json"), (b"[1, 2]", "results.json"), (b'{"a": 1}', "results.json")):
        with pytest.raises(ValueError, match="it has no rows"):
            load_results(bad, name)
    for bad, name in ((b"\xff\xfe", "results.json"), (b"{cut", "results.json"), (b"attack,ca\nx,high\n", "results.csv")):
        with pytest.raises(ValueError, match="is not a sweep's results table"):
            load_results(bad, name)
    fig = heatmap_figure(rows, "teacher", "loss", "ca", "badencoder", "signs")
    assert export(fig, "png")[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in export(fig, "svg")[:400]
    assert "student: warmup" in fig.axes[0].get_title()


def test_ray_without_ray_installed_is_refused_before_any_work(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ValueError, match="ray: running on Ray needs it installed"):
        validate(sweep_config(ray="auto"))


def test_the_paper_preset_is_the_reference_setup(tmp_path):
    from distill_core.data.datasets import default_target
    pre, att, dis = (make_config(t, "paper") for t in ("pretrain", "attack", "distill"))
    assert (pre.data, pre.width, pre.epochs, pre.batch_size, pre.lr, pre.temperature) == ("cifar10", 1.0, 1000, 256, 1e-3, 0.5)
    assert (att.data, att.epochs, att.lr, att.momentum, att.weight_decay, att.batch_size, att.shadow_fraction,
            att.trigger) == ("cifar10", 200, 1e-3, 0.9, 5e-4, 256, 1.0, "white")  # BadEncoder's code: all of it
    assert make_config("attack", "paper", {"attack": "drupe"}).n_refs == 3
    assert (dis.clean_fraction, dis.lr, dis.weight_decay, dis.epochs, dis.batch_size, dis.probe, dis.probe_epochs,
            dis.precision) == (0.05, 1e-3, 1e-6, 500, 128, "mlp", 500, "auto")
    sweep = make_config("sweep", "paper")
    assert levels(sweep)["downstream"] == ["gtsrb", "svhn", "stl10"]
    assert [default_target(d) for d in levels(sweep)["downstream"]] == ["priority road", "1", "truck"]
    cells = [j for j in schedule(sweep, tmp_path) if j.task == "distill"]
    assert len(cells) == 2 * 3 * 4 * 3 * 6 and {c.config.data for c in cells} == {"cifar10"}
    assert [j.key for j in schedule(sweep, tmp_path)][0] == "stages/pretrain"  # no shipped CIFAR-10 encoder


def test_a_sweep_places_every_cell_and_calibrates_all_but_finetune_only(tmp_path):
    from distill_core.distill import DISTILL_TASK
    cfg = sweep_config(losses="at,sp,finetune-only", placements="authors,source", calibrated="authors,source")
    cells = [j for j in schedule(cfg, tmp_path) if j.task == "distill"]
    placed = {(c.config.loss, c.cell["placement"]): (c.config.placement, c.config.calibrate) for c in cells}
    assert placed == {  # a table names a calibrated placement's level NAME+calibrated
        **{(loss, "authors+calibrated"): ("authors", True) for loss in ("at", "sp")},
        **{(loss, "authors"): ("authors", False) for loss in ("at", "sp")},
        **{(loss, "source+calibrated"): ("source", True) for loss in ("at", "sp")},
        **{(loss, "source"): ("source", False) for loss in ("at", "sp")},
        ("finetune-only", "authors"): ("authors", False)}  # nothing placed: run once, under the first level
    for c in cells:
        DISTILL_TASK.check(c.config)
