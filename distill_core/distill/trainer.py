"""The defence's run (after Han et al., 2024, arXiv 2403.03846, and the authors' `distillation.py`): read the
suspicious encoder and the clean data, score it, build the teacher and the student, distil (`distiller.py`
is one step), score the student.

Every `checkpoint_every` seconds the loop's whole state is kept at an epoch's end (`state.py`), so an
interrupted or cancelled run resumes to the result an uninterrupted one reaches; a finished run drops it.

Quick CA/ASR estimates every `eval_every` epochs feed live curves. `best.safetensors` keeps the student
with the best quick CA, a criterion a real defender could apply (it needs no knowledge of the trigger);
`encoder.safetensors` is the last one, and the one the summary scores.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ..config import check
from ..data.augment import to_float
from ..data.datasets import default_target, report_skipped
from ..data.imageset import ImageSet
from ..data.triggers import make_trigger
from ..evaluate.downstream import Downstream, figures
from ..evaluate.live import LiveCurves
from ..events import CancelToken
from ..inspect.attribution import default_method, gradcam_stage
from ..inspect.film import FILM_IMAGES, Film
from ..models.checkpoint import save_encoder
from ..runs.store import Run
from ..training import FORWARD, planned, simclr_passes, train_epochs
from .config import DistillConfig
from .baselines import defence_name
from .distiller import Distiller
from .calibrate import calibrate
from .losses import LOSSES, Placement, loss_placement
from . import recipe
from .setup import Defence, Suspect, clean_subset, open_defence
from .state import STATE_FILE, load_state, save_state
from .students import STUDENTS, build_student
from .teachers import TEACHERS, build_teacher


def distill_plan(cfg: DistillConfig) -> list[dict]:
    """The teacher's and the student's SimCLR phases where they have one, then the distillation, whose step
    runs the student over two views forward and back and the teacher over one view forward."""
    n, b = cfg.n_clean or len(clean_subset(cfg)), cfg.batch_size
    teacher = TEACHERS[cfg.teacher].simclr_epochs if LOSSES[cfg.loss].build else ""
    phases = {"teacher": teacher, "warmup": STUDENTS[cfg.student].simclr_epochs}
    parts = [planned(phase, getattr(cfg, field), n, b, simclr_passes(b))
             for phase, field in phases.items() if field and getattr(cfg, field)]
    return parts + [planned("distill", cfg.epochs, n, b, simclr_passes(b) + b * FORWARD)]


@dataclass
class Setup:
    """What a distillation works with once its inputs are read: the settings (with the encoder's input size),
    the suspicious encoder and what its attack left, the teachers' and students' raw material, the evaluator that
    scores it all (and its quick version for live curves) and the loss with its stage weights."""
    cfg: DistillConfig
    suspect: Suspect
    defence: Defence
    clean: ImageSet
    evaluator: Downstream
    quick: Downstream | None
    placement: Placement | None  # the loss where it applies (None: no teacher term)
    calibration: list[dict] | None = None  # each measurement of `--calibrate`, in order
    weighing: dict | None = None  # what set the stage weights at the start, where the loss's source does (MIMIC)

    @property
    def same_task(self) -> bool:
        return self.suspect.scored_on(self.cfg.downstream)


def open_setup(cfg: DistillConfig, run: Run, cancel: CancelToken) -> Setup:
    cfg, suspect, defence, clean = open_defence(cfg, run, cancel)
    rt = defence.rt
    target = cfg.target or (suspect.target if suspect.scored_on(cfg.downstream) else "") or default_target(cfg.downstream)
    check(bool(target), "target", f"'{cfg.downstream}' has no usual target class: name one")
    trigger = make_trigger(cfg.trigger or suspect.trigger or "white", cfg.image_size)
    evaluator = Downstream(cfg, rt, trigger, target)
    quick = Downstream.quick(cfg, rt, trigger, target) if cfg.eval_every else None
    report_skipped(run, clean, evaluator.train, evaluator.test)
    placement = loss_placement(cfg)
    where = f" ({cfg.placement}: {placement.note})" if placement else ""
    run({"kind": "log", "message": f"{len(clean)} clean images of {cfg.data}; teacher {cfg.teacher}, student "
                                   f"{cfg.student}, loss {cfg.loss}{where}; {rt.describe()['name']}, {rt.precision}"})
    return Setup(cfg, suspect, defence, clean, evaluator, quick, placement)


class FilmedCurves(LiveCurves):
    """The student's live curves and, for an attack's encoder, the film of its triggered images, recorded at each
    estimate."""

    def __init__(self, setup: Setup, student: nn.Module, run: Run):
        super().__init__(setup.quick, student, run, setup.cfg.eval_every, setup.cfg.epochs, phase="distill")
        self.film = None
        if self.quick and (setup.suspect.weights.parent / "trigger.npz").is_file():
            shown = self.quick.test.images[self.quick.gallery_index()[:FILM_IMAGES]]
            shape = setup.defence.suspicious.shape
            self.film = Film(setup.evaluator.trigger(to_float(shown).to(setup.defence.rt.device)), self.quick.classes,
                             default_method(shape), gradcam_stage(setup.cfg.downstream, shape))

    def start(self, suspicious: nn.Module) -> None:
        """The film's first frame is the suspicious encoder, before any defence (epoch -1); the curves start from
        the student as it enters the distillation."""
        if self.film is not None:
            self.film.record(-1, suspicious, self.quick.fit(suspicious))
        super().start()

    def estimated(self, epoch: int, probe) -> None:
        if self.film is not None:
            self.film.record(epoch, self.model, probe)
            self.film.save_npz(self.run.file("film.npz"))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "film": self.film and self.film.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.film is not None:
            self.film.load_state_dict(state["film"])


def run_distill(cfg: DistillConfig, run: Run, cancel: CancelToken) -> dict:
    t0 = time.perf_counter()
    state = load_state(run.file(STATE_FILE)) if run.resumed else None
    if run.resumed and state is None:
        run.rewind_events(0)  # stopped before its first checkpoint: start over, cleanly
    if state is None:  # a resumed run keeps the plan it started with
        run({"kind": "plan", "parts": distill_plan(cfg)})
    torch.manual_seed(cfg.seed)
    setup = open_setup(cfg, run, cancel)
    cfg, evaluator, rt, suspicious = setup.cfg, setup.evaluator, setup.defence.rt, setup.defence.suspicious
    seconds = {"setup": time.perf_counter() - t0}

    t = time.perf_counter()
    scores = {"poisoned": evaluator.score(suspicious) if cfg.score_before else None}
    seconds["evaluate"] = time.perf_counter() - t
    t = time.perf_counter()
    teacher = build_teacher(setup.defence) if setup.placement else None
    seconds["teacher"] = time.perf_counter() - t
    t = time.perf_counter()
    student, head = build_student(setup.defence)
    seconds["student"] = time.perf_counter() - t
    t = time.perf_counter()
    scores["teacher"] = evaluator.score(teacher.encoder) if teacher and cfg.score_before else None  # what it learns from
    seconds["evaluate"] += time.perf_counter() - t

    torch.manual_seed(cfg.seed)  # the same start whether teachers and students were trained, reused or scored
    distiller = Distiller(student, head, teacher, setup.placement, rt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                          temperature=cfg.temperature, augment=setup.defence.augment(),
                          gen=setup.defence.generator("distill"), embedding_weight=cfg.embedding_weight)
    uncalibrated = setup.placement
    if state is None or "placement" not in state:  # a resumed run restores the weights it measured (`resume`)
        uncalibrated = weigh(setup, distiller, run, cancel)
        if cfg.calibrate:
            calibrate_weights(setup, uncalibrated, distiller, teacher, run, "at the start")
    live = FilmedCurves(setup, student, run)
    step, epoch = 0, 0
    if state is not None:  # the setup above is rebuilt from the seed; the loop carries on where it stopped
        epoch, step = resume(state, setup, distiller, live, run)
    else:
        live.start(suspicious)
    saved = t = time.perf_counter()
    try:
        for epoch, step, event in train_epochs(lambda idx, e: distiller.step(setup.defence.clean[idx.to(rt.device)], e),
                                               n=len(setup.clean), batch_size=cfg.batch_size, seed=cfg.seed,
                                               epochs=cfg.epochs, cancel=cancel, emit=run, log_every=cfg.log_every,
                                               phase="distill", done=(epoch, step)):
            if live.due(epoch) and live.record(epoch, event):
                save_student(setup, distiller, run, "best.safetensors", epoch)
            run(event)
            if cfg.calibrate and epoch == 1 < cfg.epochs:  # the student has moved: measured again, from epoch 2
                calibrate_weights(setup, uncalibrated, distiller, teacher, run, "after the first epoch")
            if epoch < cfg.epochs and time.perf_counter() - saved >= cfg.checkpoint_every:
                save_state(run.file(STATE_FILE), {"epoch": epoch, "step": step, **live.state_dict(),
                                                  "rng": torch.get_rng_state(), "distiller": distiller.state_dict(),
                                                  "placement": {"weights": setup.placement.weights if setup.placement
                                                                else {}, "note": setup.placement and setup.placement.note},
                                                  "calibration": setup.calibration, "weighing": setup.weighing,
                                                  "events_offset": run.events_offset()})
                saved = time.perf_counter()
    finally:
        seconds["distill"] = time.perf_counter() - t
        save_student(setup, distiller, run, "encoder.safetensors", epoch)  # the last weights survive a crash

    t = time.perf_counter()
    scores["distilled"] = evaluator.score(student)
    evaluator.save_gallery(run.file("gallery.npz"))
    seconds["evaluate"] += time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    run.file(STATE_FILE).unlink(missing_ok=True)  # finished: nothing left to resume
    return summarise(setup, scores, live, run, seconds)


def weigh(setup: Setup, distiller: Distiller, run: Run, cancel: CancelToken) -> Placement | None:
    """Stage weights the loss's source measures before distilling (MIMIC's mutual information); the placement."""
    p, cfg = setup.placement, setup.cfg
    if p and p.weigh:
        run({"kind": "log", "message": f"{cfg.loss}: measuring its stage weights ({cfg.mi_epochs} epochs per stage)"})
        setup.placement, setup.weighing = p.weigh(p, distiller.student, setup.defence.clean, setup.defence.rt,
                                                  epochs=cfg.mi_epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                                                  cancel=cancel)
        distiller.weights = setup.placement.weights
        run({"kind": "log", "message": f"{cfg.loss}: {setup.placement.note}"})
    return setup.placement


def calibrate_weights(setup: Setup, base: Placement, distiller: Distiller, teacher, run: Run, when: str) -> None:
    """Scale the stage weights to AT's pull at the run's placement (`calibrate.py`), recorded in order."""
    cfg, d = setup.cfg, setup.defence
    setup.placement, record = calibrate(base, distiller.stage_loss, distiller.student, teacher, d.clean, d.rt,
                                        augment=d.augment(), batch_size=cfg.batch_size, seed=cfg.seed,
                                        where=cfg.placement, embedding_weight=distiller.embedding_weight,
                                        embedding_map=distiller.embedding_map, when=when)
    setup.calibration = [*(setup.calibration or []), record]
    distiller.weights = setup.placement.weights
    factors = ", ".join(f"{s} x{f:.3g}" for s, f in record["factors"].items())
    run({"kind": "log", "message": f"calibrated {cfg.loss} {when}: {factors}"})


def resume(state: dict, setup: Setup, distiller: Distiller, live: FilmedCurves, run: Run) -> tuple[int, int]:
    """Load a checkpoint's loop state; (epoch, step) it stopped after."""
    distiller.load_state_dict(state["distiller"])
    if setup.placement and "placement" in state:  # the weights the run measured (MIMIC's, calibration's)
        setup.placement = replace(setup.placement, **state["placement"])
        distiller.weights, setup.calibration = setup.placement.weights, state["calibration"]
        setup.weighing = state["weighing"]
    torch.set_rng_state(state["rng"])
    live.load_state_dict(state)
    run.rewind_events(state["events_offset"])
    run({"kind": "log", "message": f"resumed after epoch {state['epoch']} of {live.last}"})
    return state["epoch"], state["step"]


def save_student(setup: Setup, distiller: Distiller, run: Run, name: str, epoch: int) -> Path:
    cfg, suspect = setup.cfg, setup.suspect
    prov = {"task": "distill", "run": run.id, "command": run.record.get("command"), "epoch": epoch,
            "suspicious_encoder": str(suspect.weights), "teacher": cfg.teacher, "student": cfg.student,
            "loss": cfg.loss, **loss_record(setup), "trigger": cfg.trigger or suspect.trigger,
            "target": setup.evaluator.classes[setup.evaluator.target], "downstream": cfg.downstream, "config": asdict(cfg)}
    return save_encoder(run.file(name), distiller.student, distiller.head, prov)


def loss_record(setup: Setup) -> dict:
    """The loss as the run applied it (`recipe.loss_record`)."""
    return recipe.loss_record(setup.cfg, setup.placement, setup.calibration, setup.weighing)


def teacher_budget(setup: Setup) -> dict | None:
    """The teacher's own SimCLR phase (fine-tuning, or pruning's fine-tune): its epochs and learning rate."""
    field = TEACHERS[setup.cfg.teacher].simclr_epochs
    if not setup.placement or not field:
        return None
    return {"epochs": getattr(setup.cfg, field), "lr": setup.defence.phase_lr("teacher")}


def suspect_figures(setup: Setup) -> dict:
    """What the attack's own run measured on this task: its name, the clean encoder's and the poisoned one's
    figures (a distillation without `score_before` reports these)."""
    attack = setup.suspect.attack
    if not attack:
        return {}
    same = {k: attack[k] for k in ("clean", "poisoned") if setup.same_task and k in attack}
    return {"attack": attack.get("attack"), **same}


def summarise(setup: Setup, scores: dict, live: FilmedCurves, run: Run, seconds: dict) -> dict:
    """The run's summary: the figures before (poisoned, teacher) and after, per class, the gallery, the curves."""
    cfg, suspect, evaluator = setup.cfg, setup.suspect, setup.evaluator
    choice = {"teacher": cfg.teacher, "student": cfg.student, "loss": cfg.loss}
    summary = {"task": "distill", **choice, "defence": defence_name(choice, config=asdict(cfg)),
               "teacher_budget": teacher_budget(setup), "teacher_record": setup.defence.records or None,
               **loss_record(setup), "n_clean": len(setup.clean), "downstream": cfg.downstream,
               "target": evaluator.classes[evaluator.target], "trigger": cfg.trigger or suspect.trigger,
               "suspicious_encoder": str(suspect.weights)}
    summary.update(suspect_figures(setup))
    poisoned, distilled = scores["poisoned"], scores["distilled"]
    before = {"poisoned": poisoned} if poisoned else {}
    summary.update({"poisoned": figures(poisoned) if poisoned else summary.get("poisoned"),
                    "teacher_scores": scores["teacher"] and figures(scores["teacher"]),
                    "distilled": figures(distilled),
                    "per_class": {**{k: v["per_class"] for k, v in before.items()}, "distilled": distilled["per_class"]},
                    "gallery": evaluator.gallery(**before, distilled=distilled),
                    "best": live.best if live.quick else None, "curves": live.curves,
                    "encoder": str(run.file("encoder.safetensors")), "seconds": seconds})
    summary["verdict"] = recipe.verdict(summary)
    if summary["verdict"]:
        run({"kind": "log", "message": summary["verdict"]})
    return summary
