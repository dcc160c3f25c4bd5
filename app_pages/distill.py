"""Distill: purify a suspicious encoder by distilling it into a student on a little clean data."""
import io
import json
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import streamlit as st

from distill_core.data.datasets import default_target, load_dataset
from distill_core.distill import LOSSES, PLACEMENTS, RECOMMENDED, STUDENTS, TEACHERS
from distill_core.distill.baselines import DEFENCES, defences_in, offered
from distill_core.distill.config import given_weights
from distill_core.distill.losses.mimic import MOMENTUM
from distill_core.distill.recipe import loss_record, planned_teacher
from distill_core.models.checkpoint import sidecar_path
from distill_core.models.resnet import STAGES
from distill_core.presets import preset_for
from distill_core.runs.store import load_run
from distill_core.runs.table import ROLES, attack_runs, describe
from distill_core.tasks import RESUMABLE, make_config
from webui.jobs import current, live, manager, resume, start
from webui.widgets import defence_result, figure_cards, gallery, knob, upload_checkpoint


st.title("Distill: wash the backdoor out")
st.markdown("A **student** encoder learns from a **teacher** on a small clean subset: SimCLR on its own views "
            "plus a **distillation loss** that pulls its stage features towards the teacher's. The trigger "
            "never appears in the clean data, so the student has no reason to learn it.")

st.subheader("Suspicious encoder")
stored = manager().store.list()  # read once per page run: the picker and the stopped runs below
choices = {r["path"]: f"{'Demo story' if r.get('parent') else 'Attack'}: {describe(r)}" for r in attack_runs(stored)}
choices["upload"] = "Upload a checkpoint…"
choice = st.selectbox("Encoder to purify", list(choices), format_func=choices.get, key="distill:encoder",
                      help="Finished attack runs (from the Attack page or the demo) or a checkpoint of your own.")
overrides, setup = {}, "demo"
if choice == "upload":
    encoder = upload_checkpoint("Suspicious encoder checkpoint", "distill:upload")
    c1, c2 = st.columns(2)
    overrides["trigger"] = c1.text_input("Its trigger", "white", help="e.g. white, checkerboard:size=6,pos=tl")
    downstream = make_config("distill", "demo").downstream
    classes, usual = load_dataset(downstream, "train").classes, default_target(downstream)
    overrides["target"] = c2.selectbox("Its target class", classes,
                                       index=classes.index(usual) if usual in classes else 0)
else:
    encoder = choice
    attacked = load_run(choice)
    figure_cards(attacked["summary"], ("clean", "poisoned"))
    # the defender's clean images come from the attack's pre-training data, scored on its downstream task
    overrides = {k: attacked["config"][k] for k in ("data", "data_root", "downstream", "n_downstream_train",
                                                    "n_downstream_test") if k in attacked["config"]}
    setup = preset_for(overrides.get("data", "shapes"))

st.subheader("Defence")


def take_parts() -> None:
    """A named defence picked: its teacher, student and loss go into their choices below."""
    named = DEFENCES.get(st.session_state["distill:defence"])
    for field, value in {**RECOMMENDED, **(named.parts if named else {})}.items():
        st.session_state[f"distill:{field}"] = value


def own_parts() -> None:
    """A part changed by hand: the combination is the user's own, no longer the named defence."""
    st.session_state["distill:defence"] = ""


named = st.selectbox("Named defence", ["", *offered()], key="distill:defence", on_change=take_parts,
                     format_func=lambda n: n or "The study's recipe ★, or your own combination below",
                     help="A defence the field names, with its own settings at this preset's scale; changing a part "
                          "below makes it your own combination.")
st.caption("★ marks the study's recommendation.")
picks = {}
for col, (field, registry) in zip(st.columns(3), (("teacher", TEACHERS), ("student", STUDENTS), ("loss", LOSSES))):
    with col:
        star = lambda n, f=field: f"{n} ★" if RECOMMENDED[f] == n else n
        st.session_state.setdefault(f"distill:{field}", RECOMMENDED[field])
        picks[field] = st.radio(field.capitalize(), list(registry), key=f"distill:{field}", format_func=star,
                                on_change=own_parts)
        st.caption(registry[picks[field]].title)
spec = LOSSES[picks["loss"]]
named = named if named and all(picks.get(k) == v for k, v in DEFENCES[named].parts.items()) else ""
mine = named or "own"  # widgets are kept per named defence, so each opens on its own settings
teacher_key = f"distill:{setup}:{mine}:teacher_epochs"
chosen = {"teacher_epochs": st.session_state[teacher_key]} if teacher_key in st.session_state else {}
cfg = make_config("distill", setup, {**picks, **overrides, **chosen, "defence": named})
fixed = set(DEFENCES[named].settings(cfg)) if named else set()  # what the named defence sets: shown, not editable
for what, role in (("This is", "distilled"), ("Its teacher alone is", "teacher_scores")):
    d = next((d for d in defences_in(picks, asdict(cfg)) if d.encoder == role and d.offered), None)
    if d:
        st.caption(f"{what} **{d.name}** ({d.cite}): {d.title} Scored on the same clean data and task as every other.")
st.subheader("Settings")
if spec.build is not None:
    where, calibrate = st.columns([3, 1])
    overrides["placement"] = where.radio(
        "Placement", PLACEMENTS, index=PLACEMENTS.index(cfg.placement), horizontal=True, key="distill:placement",
        help="Where the loss applies and how strongly: where its source paper puts it, as the study's authors' code "
             "runs it (the story's choice), or the paper's form on every stage at one weight.")
    placement = spec.placement(overrides["placement"])
    overrides["calibrate"] = not placement.weigh and calibrate.checkbox(
        "Calibrate weights", key="distill:calibrate", disabled=bool(placement.weigh),  # MIMIC weighs its own
        help="Scale each stage's weight so this loss pulls on the student as hard as attention transfer does there, "
             "at this placement: measured at the start and again after the first epoch.")
    form = f" Form: {placement.variant}." if placement.variant else ""
    own = f" plus its own {placement.embedding:g} x (1 - cosine) on the final embedding" if placement.embedding else ""
    st.caption(f"`{spec.name}` ({spec.cite}) here: {placement.note}.{form} Stage weights below{own}; 0 skips a "
               "stage. *embedding* adds 1 - cosine of the student's and teacher's final embeddings: the authors' code "
               "runs it only as its 'SP', alone; beside a stage loss it is the lab's addition.")
    *stage_columns, embedding = st.columns(len(STAGES) + 1)
    shown = given_weights(cfg)
    shown = placement.weights if shown is None else shown
    weights = [c.number_input(s, value=float(shown.get(s, 0.0)), min_value=0.0, step=100.0, format="%g",
                              key=f"distill:{spec.name}:{overrides['placement']}:{mine}:{s}",
                              disabled="weights" in fixed)
               for c, s in zip(stage_columns, STAGES)]
    embedding_weight = embedding.number_input(
        "embedding", value=float(cfg.embedding_weight), min_value=0.0, step=10.0, format="%g",
        key=f"distill:{setup}:{mine}:embedding_weight", disabled="embedding_weight" in fixed,
        help="Pulls the student's final embedding towards the teacher's: more of what the teacher knows about the "
             "clean images, at some risk of what it kept of the backdoor.")
    if "embedding_weight" not in fixed:
        overrides["embedding_weight"] = embedding_weight
    if "weights" not in fixed and {s: w for s, w in zip(STAGES, weights) if w > 0} != placement.weights:
        overrides["weights"] = ",".join(f"{w:g}" for w in weights)
    if placement.weigh and "weights" not in overrides:
        st.caption(f"MIMIC measures its stage weights when the run starts: the base above plus {MOMENTUM:g} x each "
                   f"stage's share of the mutual information with the embedding ({cfg.mi_epochs} estimator epochs).")
s1, s2, s3 = st.columns(3)
clean_train = len(load_dataset(cfg.data, "train", root=cfg.data_root))
with s1:
    fraction = st.slider("Clean data", 0.02, 0.5, min(max(cfg.n_clean / clean_train, 0.02), 0.5), 0.01,
                         key=f"distill:{setup}:fraction",
                         help=f"Share of the {clean_train:,} pre-training images the defender holds", format="%.2f")
    overrides["n_clean"] = round(fraction * clean_train)
    st.caption(f"{overrides['n_clean']:,} images")
with s2:
    if "epochs" in fixed:  # NAD's follow its teacher's: shown as it will run
        st.number_input("Distillation epochs", value=cfg.epochs, disabled=True,
                        help=f"Set by {named}: {DEFENCES[named].title}")
    else:
        overrides["epochs"] = knob(cfg, "epochs", f"distill:{setup}:{mine}:epochs")
with s3:
    overrides["lr"] = knob(cfg, "lr", f"distill:{setup}:{mine}:lr")
parts = (TEACHERS[picks["teacher"]], STUDENTS[picks["student"]], spec)
own = list(dict.fromkeys(k for part in parts for k in part.knobs))  # each chosen part's own settings, once
if own:
    st.caption("The chosen teacher's, student's and loss's own settings:")
    for col, field in zip(st.columns(max(len(own), 3)), own):
        with col:
            overrides[field] = knob(cfg, field, f"distill:{setup}:{mine}:{field}", disabled=field in fixed)

final = make_config("distill", setup, {**picks, **overrides, "defence": named})
st.caption(f"What will run: {planned_teacher(final)}; the {final.student} student trains {final.epochs} epochs on "
           f"{loss_record(final)['recipe']}.")
job = current("distill")
if st.button("Run the distillation", type="primary", disabled=not encoder or bool(job and job.active)):
    kept = str(manager().store.root / "prepared")  # a teacher or warm-up trained once serves later runs too
    start("distill", "distill", {**picks, **overrides, "defence": named, "encoder": encoder, "reuse": kept},
          preset=setup)

stopped = [r for r in stored
           if r["kind"] == "distill" and r["status"] in RESUMABLE and not r.get("parent")]
if stopped:
    with st.expander(f"Resume a stopped distillation ({len(stopped)})"):
        label = {r["path"]: f"{r['status'].capitalize()}: {r['config'].get('teacher')} / {r['config'].get('student')} / "
                            f"{r['config'].get('loss')}, {r['config'].get('epochs')} epochs · started "
                            f"{time.strftime('%H:%M', time.localtime(r['created']))} ({r['id'][-4:]})" for r in stopped}
        pick = st.selectbox("Stopped run", list(label), format_func=label.get, key="distill:resume")
        st.caption("It carries on from its last checkpoint (kept at an epoch's end) to the result an uninterrupted "
                   "run reaches.")
        if st.button("Resume", key="distill:resume-button", disabled=bool(job and job.active)):
            resume("distill", pick)
if job is not None:
    st.subheader("Training")
    live(job)
    if job.status == "done":
        run = load_run(job.run_path)
        summary = run["summary"]
        st.subheader("Results")
        defence_result(summary)
        st.markdown("**Triggered test images** with each encoder's downstream prediction (:red[**red**]: the attacker's target):")
        gallery(run)
        weights = Path(summary["encoder"])
        pack = io.BytesIO()
        with zipfile.ZipFile(pack, "w") as z:
            z.write(weights, weights.name)
            z.write(sidecar_path(weights), sidecar_path(weights).name)
        d1, d2, d3 = st.columns(3)
        d1.download_button("Purified encoder (.safetensors + sidecar)", pack.getvalue(), f"{run['id']}-encoder.zip",
                           "application/zip")
        d2.download_button("Results (JSON)", json.dumps(summary, indent=2), f"{run['id']}-summary.json",
                           "application/json")
        figures = pd.DataFrame([{"encoder": role, **summary[role]} for role in (*ROLES, "teacher_scores")
                                if isinstance(summary.get(role), dict)])
        d3.download_button("Figures (CSV)", figures.to_csv(index=False), f"{run['id']}-figures.csv", "text/csv")
