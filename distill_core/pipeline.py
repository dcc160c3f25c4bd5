"""The whole story in one task: (pre-train) -> attack -> distill, each stage a run inside the pipeline's
run directory (`pretrain/`, `attack/`, `distill/`), every event also forwarded to the pipeline's own
record with its `stage`.

Each stage's config is the preset's for that task, then the pipeline's shared settings (device, seed,
data and downstream, trigger, target), then the stage-specific overrides the pipeline names (0 or empty:
keep the preset's). The distillation takes its trigger and target from the attack's run (`trigger.npz`
holds the exact pattern). The clean encoder is `encoder`, else the one the preset ships for the pre-training
data, else one pre-trained first.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields

from .attacks import ATTACK_TASK, attack_plan
from .config import DownstreamConfig, RuntimeConfig, opt
from .distill import DISTILL_TASK, distill_plan
from .presets import TRAINED_ON, preset_encoder
from .events import CancelToken
from .runs.registry import Task, make_config, run_task
from .runs.store import Run
from .ssl.pretrain import PRETRAIN_TASK, pretrain_plan


STAGES = {t.name: t for t in (PRETRAIN_TASK, ATTACK_TASK, DISTILL_TASK)}


def sets(stages: dict[str, str], default=0, help: str = ""):
    """A field that sets each named stage's field ({stage: field}); its help and label are that field's (or
    `help`), and its default, 0 or empty, keeps the preset's (said in place of what the stage's own 0 means).
    `STAGE_FIELDS` is read off these, so a setting is declared once, by its stage."""
    stage, name = next(iter(stages.items()))
    meta = next(f.metadata for f in fields(STAGES[stage].config) if f.name == name)
    help = help or meta["help"]
    if default in (0, ""):
        empty = "0" if default == 0 else "empty"
        help = f"{help.split(f' ({empty} = ')[0]} ({empty} = the preset's)"
    return opt(default, help, sets=stages, **{k: meta[k] for k in ("label",) if k in meta})


@dataclass
class StagesConfig(RuntimeConfig, DownstreamConfig):
    """What a pipeline and a sweep share: where the story starts and how big each stage is."""
    preset: str = opt("", "the preset every stage takes its settings from (set by --preset)")
    encoder: str = opt("", "clean encoder to start from; empty = the preset's for the pre-training data, "
                           "else one pre-trained first")
    pretrain_data: str = sets({"pretrain": "data", "attack": "data", "distill": "data"}, "cifar10",
                              "pre-training data: the clean encoder's, the attacker's shadow set and the defender's "
                              "clean subset all come from it")
    trigger: str = sets({"attack": "trigger"}, "white")
    target: str = sets({"attack": "target"}, "")
    pretrain_epochs: int = sets({"pretrain": "epochs"})
    n_pretrain: int = sets({"pretrain": "n_train"})
    attack_epochs: int = sets({"attack": "epochs"})
    n_shadow: int = sets({"attack": "n_shadow"})
    distill_epochs: int = sets({"distill": "epochs"})
    teacher_epochs: int = sets({"distill": "teacher_epochs"})
    warmup_epochs: int = sets({"distill": "warmup_epochs"})
    n_clean: int = sets({"distill": "n_clean"})


@dataclass
class PipelineConfig(StagesConfig):
    attack: str = sets({"attack": "attack"}, "badencoder")
    teacher: str = sets({"distill": "teacher"}, "finetuned")
    student: str = sets({"distill": "student"}, "warmup")
    loss: str = sets({"distill": "loss"}, "at")
    placement: str = sets({"distill": "placement"}, "")


SHARED = tuple(f.name for f in fields(DownstreamConfig)) + tuple(f.name for f in fields(RuntimeConfig))
STAGE_FIELDS = {stage: {f.name: f.metadata["sets"][stage] for f in fields(PipelineConfig)
                        if stage in f.metadata.get("sets", {})} for stage in STAGES}  # field -> the stage's field


def stage_config(cfg: StagesConfig, stage: str, **extra):
    """The preset's config for `stage`, then the shared settings, the stage's own fields set in `cfg` (a
    sweep has no single attack or teacher: it passes them in `extra`), then `extra`."""
    overrides = {name: getattr(cfg, name) for name in SHARED}
    overrides.update({dst: getattr(cfg, src) for src, dst in STAGE_FIELDS[stage].items()
                      if getattr(cfg, src, None)})  # a sweep has no single attack, teacher, ...: they come in `extra`
    return make_config(STAGES[stage], cfg.preset or None, {**overrides, **extra})


def stage_configs(cfg: PipelineConfig, attack_run: str) -> dict:
    """Each stage's config, in order; pre-training only where no clean encoder is given or shipped (the
    attack's encoder is then set once it has run)."""
    clean_encoder = cfg.encoder or preset_encoder(cfg.preset, cfg.pretrain_data)
    stages = {} if clean_encoder else {"pretrain": stage_config(cfg, "pretrain")}
    stages["attack"] = stage_config(cfg, "attack", encoder=str(clean_encoder or ""))
    stages["distill"] = stage_config(cfg, "distill", encoder=attack_run)
    return stages


PLANS = {"pretrain": pretrain_plan, "attack": attack_plan, "distill": distill_plan}


def pipeline_plan(configs: dict) -> list[dict]:
    """The stages' plans, each part named by its stage."""
    return [{**p, "part": " · ".join(x for x in (stage, p["part"]) if x)}
            for stage, stage_cfg in configs.items() for p in PLANS[stage](stage_cfg)]


def pipeline(cfg: PipelineConfig, run: Run, cancel: CancelToken) -> dict:
    t0 = time.perf_counter()
    seconds, runs = {}, {}

    def stage(name: str, stage_cfg) -> dict:
        t = time.perf_counter()
        path, summary = run_task(STAGES[name], stage_cfg, out=run.file(name), cancel=cancel,
                                 on_event=lambda e: run({**e, "stage": name}), command=run.record.get("command"))
        seconds[name], runs[name] = time.perf_counter() - t, str(path)
        return summary

    configs = stage_configs(cfg, str(run.file("attack")))
    attack_cfg, distill_cfg, pretrain_cfg = configs["attack"], configs["distill"], configs.get("pretrain")
    for name, stage_cfg in configs.items():  # every stage's settings are checked before the first one starts
        STAGES[name].check(stage_cfg)
    run({"kind": "plan", "parts": pipeline_plan(configs)})
    shipped = not cfg.encoder and preset_encoder(cfg.preset, cfg.pretrain_data)
    if shipped:
        run({"kind": "log", "message": f"clean encoder: the {cfg.preset} preset's shipped {shipped.name}, pre-trained "
                                       f"on {TRAINED_ON[shipped]} (shadow and clean images: {cfg.pretrain_data})"})
    if pretrain_cfg is not None:
        attack_cfg.encoder = stage("pretrain", pretrain_cfg)["encoder"]
    attacked = stage("attack", attack_cfg)
    distilled = stage("distill", distill_cfg)
    seconds["total"] = time.perf_counter() - t0
    return {"preset": cfg.preset, "attack": cfg.attack, "teacher": cfg.teacher, "student": cfg.student,
            "loss": cfg.loss, "downstream": cfg.downstream, "target": attacked["target"],
            "clean": attacked["clean"], "poisoned": attacked["poisoned"], "distilled": distilled["distilled"],
            "teacher_scores": distilled["teacher_scores"], "teacher_budget": distilled.get("teacher_budget"),
            "recipe": distilled.get("recipe"), "verdict": distilled.get("verdict"),
            "gallery": {**attacked["gallery"], "distilled": distilled["gallery"]["distilled"]},
            "clean_encoder": attack_cfg.encoder, "encoder": distilled["encoder"], "runs": runs, "seconds": seconds}


CHOICES = {f.name: STAGES[stage].choices[dst] for f in fields(PipelineConfig)  # the registries of the fields it sets
           for stage, dst in f.metadata.get("sets", {}).items() if dst in STAGES[stage].choices}
PIPELINE_TASK = Task("pipeline", PipelineConfig, pipeline, "The whole story: (pre-train,) attack, distill; clean, "
                     "poisoned and distilled figures side by side.", choices=CHOICES)
