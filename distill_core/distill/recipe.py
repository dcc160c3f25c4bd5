"""What a distillation ran and what it showed, in words: every face (the CLI's summary, the app's cards, the
pipeline's story, results texts) names the recipe from the run's own record, and sets the purified student beside
the simplest defence that could explain it, its teacher fine-tuned alone."""
from __future__ import annotations

from ..models.resnet import STAGES
from .config import given_weights, phase_lr
from .losses import LOSSES, loss_placement

REMOVED_ABOVE_FLOOR = 0.05  # a backdoor counts as removed at ASR <= ASR-B + 5 points (the demo's bar)
REMOVED_UNKNOWN_FLOOR = 0.10  # ... or at most 10% where the clean encoder's ASR-B is not known


def stage_weights_text(weights: dict) -> str:
    """"every stage at 1000 each", "layer4 at 5000", "layer1 at 1200, layer2 at 3100, ..."."""
    if len(weights) > 1 and len(set(weights.values())) == 1:
        where = "every stage" if list(weights) == list(STAGES) else ", ".join(weights)
        return f"{where} at {next(iter(weights.values())):.4g} each"
    return ", ".join(f"{s} at {w:.4g}" for s, w in weights.items())


def recipe_text(record: dict) -> str:
    """The loss as the run applied it, every term and weight: e.g. "SimCLR + AT on every stage at 1000 each (authors)
    + 300 x (1 - cos) on the final embedding (the lab's addition)"."""
    loss, weights = record.get("loss", ""), record.get("weights") or {}
    own, total = record.get("embedding_own", 0.0) or 0.0, record.get("embedding_weight", 0.0) or 0.0
    if loss == "finetune-only" or not (weights or total):
        return "SimCLR on the clean data only (no teacher term)"
    parts = ["SimCLR"]
    if weights:
        how = ["weights as given" if record.get("weights_given") else record.get("placement") or ""]
        if record.get("variant"):
            how.append(record["variant"])
        if record.get("weighing"):
            how.append("weighted by mutual information")
        if record.get("calibration"):
            how.append("calibrated")
        parts.append(f"{LOSSES[loss].term or loss.upper()} on {stage_weights_text(weights)} "
                     f"({', '.join(h for h in how if h)})")
    if own:
        parts.append(f"{own:g} x (1 - cos) on the final embedding ({loss.upper()}'s own clone loss)")
    extra = total - own
    if extra:
        whose = ("the lab's addition: the authors' code never runs it beside a stage loss" if weights else
                 "alone: the authors' code runs it, at 1, as its 'SP'")
        parts.append(f"{extra:g} x (1 - cos) on the final embedding ({whose})")
    return " + ".join(parts)


def loss_record(cfg, placement=None, calibration=None, weighing=None) -> dict:
    """The loss as a run applies it: placement, stage weights, the form (variant), the final embedding's weight (and
    the loss's own share of it), what set the weights (calibration, MIMIC's weighing), and all of it in words.
    Before a run, `placement` is the configured one (MIMIC's weights are measured when it starts)."""
    p = placement or loss_placement(cfg)
    record = {"loss": cfg.loss, "placement": cfg.placement if p else "", "weights": p.weights if p else {},
              "weights_given": given_weights(cfg) is not None, "variant": p.variant if p else "",
              "placement_note": p.note if p else "",
              "embedding_weight": (cfg.embedding_weight + p.embedding) if p else 0.0,
              "embedding_own": p.embedding if p else 0.0, "calibration": calibration, "weighing": weighing}
    planned = {**record, "weighing": weighing or (p and p.weigh and {"at the start": True}),
               "calibration": calibration or (cfg.calibrate and [{}])}
    return {**record, "recipe": recipe_text(planned)}


TEACHER_ALONE = {"finetuned": "Fine-tuning alone (the teacher)", "pruned": "Fine-pruning alone (the pruned teacher)",
                 "ensemble": "The ensemble teacher alone"}  # what a teacher scored alone is, as a defence


def planned_teacher(cfg) -> str:
    """The teacher a config will build, in words: "the teacher fine-tuned for 5 SimCLR epochs at lr 0.0005"."""
    if cfg.teacher != "finetuned":
        return f"the {cfg.teacher} teacher"
    return f"the teacher fine-tuned for {cfg.teacher_epochs} SimCLR epochs at lr {phase_lr(cfg, 'teacher'):g}"


def teacher_text(summary: dict) -> str:
    """The teacher scored alone, with its budget: "finetuned: 5 SimCLR epochs at lr 0.002"."""
    budget = summary.get("teacher_budget") or {}
    name = summary.get("teacher", "")
    if not budget:
        return name
    return f"{name}: {budget['epochs']} SimCLR epochs at lr {budget['lr']:g}"


def removed(figures: dict, clean: dict | None) -> bool:
    floor = clean["asr"] + REMOVED_ABOVE_FLOOR if clean and clean.get("asr") is not None else REMOVED_UNKNOWN_FLOOR
    return figures["asr"] <= floor


def verdict(summary: dict) -> str | None:
    """One sentence: did distillation do better than its teacher fine-tuned alone on this run? None where the run's
    teacher is not a defence of its own (poisoned, ensemble) or either was not scored."""
    teacher, student = summary.get("teacher_scores"), summary.get("distilled")
    if summary.get("teacher") not in ("finetuned", "pruned") or not teacher or not student:
        return None
    alone = TEACHER_ALONE[summary["teacher"]]
    clean = summary.get("clean") if isinstance(summary.get("clean"), dict) else None
    t, d = (f"ASR {100 * f['asr']:.1f}% at CA {100 * f['ca']:.1f}%" for f in (teacher, student))
    both = f"{alone}: {t}; distilled student: {d}."
    if removed(teacher, clean) and removed(student, clean):
        better = alone.split(" (")[0].lower() if teacher["ca"] >= student["ca"] else "distillation"
        return f"Both removed the backdoor here, and {better} kept more accuracy. {both}"
    if removed(teacher, clean):
        return f"{alone} removed the backdoor here and distillation did not. {both}"
    if removed(student, clean):
        return f"Distillation removed the backdoor that {alone[0].lower()}{alone[1:]} left. {both}"
    return f"Neither removed the backdoor here. {both}"
