"""The defence's loop (after Han et al., 2024, arXiv 2403.03846, and the authors' `distillation.py`):
the student minimises its own SimCLR InfoNCE on the defender's clean subset plus, for each chosen stage,
weight x loss(student stage, teacher stage). Both views go through the student in one pass that also
yields its stage outputs; the frozen teacher sees the first view once per step (as in the authors' code,
which however recomputes every stage with extra passes).

Every `checkpoint_every` seconds the loop's whole state is kept at an epoch's end (`state.py`), so an
interrupted or cancelled run resumes to the result an uninterrupted one reaches; a finished run drops it.

Quick CA/ASR estimates every `eval_every` epochs feed live curves. `best.safetensors` keeps the student
with the best quick CA, a criterion a real defender could apply (it needs no knowledge of the trigger);
`encoder.safetensors` is the last one, and the one the summary scores.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..config import check
from ..data.augment import to_float
from ..data.datasets import default_target, report_skipped
from ..data.triggers import make_trigger
from ..device import Runtime
from ..evaluate.downstream import Downstream, figures
from ..inspect.film import FILM_IMAGES, Film
from ..models.checkpoint import save_encoder
from ..models.resnet import STAGES
from ..events import CancelToken
from ..runs.store import Run
from ..ssl.simclr import info_nce
from ..training import FORWARD, planned, simclr_passes, train_epochs
from .checks import validate
from .config import DistillConfig, stage_weights
from .losses import LOSSES
from .setup import clean_subset, open_defence
from .state import STATE_FILE, load_state, save_state
from .students import STUDENTS, build_student
from .teachers import TEACHERS, FrozenTeacher, build_teacher


class _FirstRows(torch.autograd.Function):
    """x[:n] whose gradient has x's strides. A plain slice's backward builds an NCHW gradient, and adding that
    to the channels-last gradient from the layers above made the adds and ReLU backward 3x slower (measured)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, n: int) -> torch.Tensor:
        ctx.n, ctx.size, ctx.stride = n, x.size(), x.stride()
        return x[:n]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out = torch.empty_strided(ctx.size, ctx.stride, dtype=grad.dtype, device=grad.device)
        out[: ctx.n] = grad
        out[ctx.n:].zero_()
        return out, None


def first_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    return _FirstRows.apply(x, n)


class Distiller:
    """One step of the defence: the student's InfoNCE over two views plus the weighted stage losses against
    the frozen teacher. Owns the optimiser (student, head and any parameters of the stage losses)."""

    def __init__(self, student: nn.Module, head: nn.Module, teacher: FrozenTeacher | None, spec, weights: dict,
                 rt: Runtime, *, lr: float, weight_decay: float, temperature: float, augment, gen):
        self.student, self.head, self.teacher, self.rt = student, head, teacher, rt
        self.name, self.weights, self.temperature = spec.name, weights, temperature
        self.augment, self.gen = augment, gen
        self.stage_loss = rt.module(nn.ModuleDict({
            s: spec.build(student.stage_channels[STAGES.index(s)], teacher.stage_channels[STAGES.index(s)])
            for s in weights}))
        params = [*student.parameters(), *head.parameters(), *self.stage_loss.parameters()]
        self.opt = rt.optimizer(torch.optim.Adam, params, lr=lr, weight_decay=weight_decay)
        self.losses = rt.compiled(self.losses)

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: uint8 images on the device -> the loss and its named terms (detached, still on the device)."""
        self.student.train()
        self.head.train()
        views = self.rt.prepare(torch.cat((self.augment(x, self.gen), self.augment(x, self.gen))))
        terms = self.losses(views)
        self.opt.zero_grad(set_to_none=True)
        self.rt.backward(terms["loss"], self.opt)
        return {k: v.detach() for k, v in terms.items()}

    def state_dict(self) -> dict:
        return {"student": self.student.state_dict(), "head": self.head.state_dict(),
                "stage_loss": self.stage_loss.state_dict(), "optimizer": self.opt.state_dict(),
                "generator": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.head.load_state_dict(state["head"])
        self.stage_loss.load_state_dict(state["stage_loss"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])

    def losses(self, views: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both views [2N, ...] -> the loss and its named terms: one student pass, one teacher pass."""
        n = len(views) // 2
        with self.rt.autocast():
            feature, maps = self.student(views, stages=True)
            z = self.head(feature)
            terms = {"ssl": info_nce(z[:n], z[n:], self.temperature)}
            if self.weights:
                _, teacher_maps = self.teacher(views[:n])
                for s in self.weights:
                    i = STAGES.index(s)
                    terms[f"{self.name}.{s}"] = self.stage_loss[s](first_rows(maps[i], n), teacher_maps[i])
        loss = terms["ssl"] + sum(w * terms[f"{self.name}.{s}"] for s, w in self.weights.items())
        return {"loss": loss, **terms}


def distill_plan(cfg: DistillConfig) -> list[dict]:
    """The teacher's and the student's SimCLR phases where they have one, then the distillation, whose step
    runs the student over two views forward and back and the teacher over one view forward."""
    n, b = cfg.n_clean or len(clean_subset(cfg)), cfg.batch_size
    teacher = TEACHERS[cfg.teacher].simclr_epochs if LOSSES[cfg.loss].build else ""
    phases = {"teacher": teacher, "warmup": STUDENTS[cfg.student].simclr_epochs}
    parts = [planned(phase, getattr(cfg, field), n, b, simclr_passes(b))
             for phase, field in phases.items() if field and getattr(cfg, field)]
    return parts + [planned("distill", cfg.epochs, n, b, simclr_passes(b) + b * FORWARD)]


def run_distill(cfg: DistillConfig, run: Run, cancel: CancelToken) -> dict:
    validate(cfg)
    t0 = time.perf_counter()
    state = load_state(run.file(STATE_FILE)) if run.resumed else None
    if run.resumed and state is None:
        run.rewind_events(0)  # stopped before its first checkpoint: start over, cleanly
    if state is None:  # a resumed run keeps the plan it started with
        run({"kind": "plan", "parts": distill_plan(cfg)})
    torch.manual_seed(cfg.seed)
    cfg, suspect, defence, clean = open_defence(cfg, run, cancel)
    rt, suspicious = defence.rt, defence.suspicious
    same_task = suspect.downstream == cfg.downstream
    target = cfg.target or (suspect.target if same_task else "") or default_target(cfg.downstream)
    check(bool(target), "target", f"'{cfg.downstream}' has no usual target class: name one")
    trigger = make_trigger(cfg.trigger or suspect.trigger or "white", cfg.image_size)
    task = Downstream(cfg, rt, trigger, target)
    quick = Downstream.quick(cfg, rt, trigger, target) if cfg.eval_every else None
    report_skipped(run, clean, task.train, task.test)
    spec = LOSSES[cfg.loss]
    weights = stage_weights(cfg, spec.weight) if spec.build else {}
    run({"kind": "log", "message": f"{len(clean)} clean images of {cfg.data}; teacher {cfg.teacher}, student "
                                   f"{cfg.student}, loss {cfg.loss}; {rt.describe()['name']}, {rt.precision}"})
    seconds = {"setup": time.perf_counter() - t0}

    t = time.perf_counter()
    poisoned_score = task.score(suspicious) if cfg.score_before else None
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    teacher = build_teacher(defence) if spec.build else None
    seconds["teacher"] = time.perf_counter() - t
    t = time.perf_counter()
    student, head = build_student(defence)
    seconds["student"] = time.perf_counter() - t
    t = time.perf_counter()
    teacher_score = task.score(teacher.encoder) if teacher and cfg.score_before else None  # what the student learns from
    seconds["evaluate"] += time.perf_counter() - t

    torch.manual_seed(cfg.seed)  # the same start whether teachers and students were trained, reused or scored
    distiller = Distiller(student, head, teacher, spec, weights, rt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                          temperature=cfg.temperature, augment=defence.augment(), gen=defence.generator("distill"))

    def save(name: str, epoch: int) -> Path:
        prov = {"task": "distill", "run": run.id, "command": run.record.get("command"), "epoch": epoch,
                "suspicious_encoder": str(suspect.weights), "teacher": cfg.teacher, "student": cfg.student,
                "loss": cfg.loss, "weights": weights, "trigger": cfg.trigger or suspect.trigger,
                "target": task.classes[task.target], "downstream": cfg.downstream, "config": asdict(cfg)}
        return save_encoder(run.file(name), student, head, prov)

    curves, best = [], {"epoch": 0, "ca": -1.0}
    film = None
    if quick and (suspect.weights.parent / "trigger.npz").is_file():  # an attack run: film its triggered images
        shown = quick.test.images[quick.gallery_index()[:FILM_IMAGES]]
        film = Film(trigger(to_float(shown).to(rt.device)), quick.classes)

    def evaluate(epoch: int) -> dict:
        probe = quick.fit(student)
        figs = figures(quick.score(student, probe))
        if film is not None:
            film.record(epoch, student, probe)
            film.save(run.file("film.npz"))
        return figs

    step, epoch = 0, 0
    if state is not None:  # the setup above is rebuilt from the seed; the loop carries on where it stopped
        distiller.load_state_dict(state["distiller"])
        torch.set_rng_state(state["rng"])
        epoch, step, best, curves = state["epoch"], state["step"], state["best"], state["curves"]
        if film is not None:
            film.load_state_dict(state["film"])
        run.rewind_events(state["events_offset"])
        run({"kind": "log", "message": f"resumed after epoch {epoch} of {cfg.epochs}"})
    else:
        if film is not None:  # the first frame: the suspicious encoder, before any defence (epoch -1)
            film.record(-1, suspicious, quick.fit(suspicious))
        if quick:
            curves.append({"epoch": 0, **evaluate(0)})
            run({"kind": "epoch", "phase": "distill", "epochs": cfg.epochs, **curves[-1]})  # the starting point
    saved = time.perf_counter()
    t = time.perf_counter()
    try:
        for epoch, step, event in train_epochs(lambda idx, _: distiller.step(defence.clean[idx.to(rt.device)]),
                                               n=len(clean), batch_size=cfg.batch_size, seed=cfg.seed,
                                               epochs=cfg.epochs, cancel=cancel, emit=run, log_every=cfg.log_every,
                                               phase="distill", done=(epoch, step)):
            if quick and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                event.update(evaluate(epoch))
                curves.append({"epoch": epoch, **figures(event)})
                if event["ca"] > best["ca"]:
                    best = {"epoch": epoch, "ca": event["ca"]}
                    save("best.safetensors", epoch)
            run(event)
            if epoch < cfg.epochs and time.perf_counter() - saved >= cfg.checkpoint_every:
                save_state(run.file(STATE_FILE), {
                    "epoch": epoch, "step": step, "best": best, "curves": curves, "rng": torch.get_rng_state(),
                    "distiller": distiller.state_dict(), "film": film and film.state_dict(),
                    "events_offset": run.events_offset()})
                saved = time.perf_counter()
    finally:
        seconds["distill"] = time.perf_counter() - t
        save("encoder.safetensors", epoch)  # the last weights survive a cancel or a crash

    t = time.perf_counter()
    distilled = task.score(student)
    task.save_gallery(run.file("gallery.npz"))
    seconds["evaluate"] += time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    summary = {"task": "distill", "teacher": cfg.teacher, "student": cfg.student, "loss": cfg.loss,
               "weights": weights, "n_clean": len(clean), "downstream": cfg.downstream,
               "target": task.classes[task.target], "trigger": cfg.trigger or suspect.trigger,
               "suspicious_encoder": str(suspect.weights)}
    if suspect.attack:
        summary["attack"] = suspect.attack.get("attack")
        if same_task and "clean" in suspect.attack:
            summary["clean"] = suspect.attack["clean"]  # the attack scored the clean encoder on this task
    before = {"poisoned": poisoned_score} if poisoned_score else {}
    attack_scored = (suspect.attack or {}).get("poisoned") if same_task else None  # without score_before
    summary.update({"poisoned": figures(poisoned_score) if poisoned_score else attack_scored,
                    "teacher_scores": teacher_score and figures(teacher_score), "distilled": figures(distilled),
                    "per_class": {**{k: v["per_class"] for k, v in before.items()}, "distilled": distilled["per_class"]},
                    "gallery": task.gallery(**before, distilled=distilled),
                    "best": best if quick else None, "curves": curves,
                    "encoder": str(run.file("encoder.safetensors")), "seconds": seconds})
    run.file(STATE_FILE).unlink(missing_ok=True)  # finished: nothing left to resume
    return summary
