"""Overview: what a backdoored encoder is, the story as a picture, and the whole demo in one click."""
import streamlit as st

from distill_core.data.augment import to_float
from distill_core.data.datasets import describe_datasets, load_dataset
from distill_core.data.triggers import make_trigger
from distill_core.demo_story import demo_speed, seconds_here
from distill_core.device import Runtime
from distill_core.distill.recipe import loss_record, planned_teacher
from distill_core.models.checkpoint import read_checkpoint
from distill_core.presets import DEMO_ENCODER
from distill_core.runs.store import load_run
from distill_core.runs.table import precomputed_note
from distill_core.tasks import make_config
from distill_core.ui import image_grid
from webui.jobs import current, live, manager, start
from webui.widgets import defence_result, gallery

STORY = """
digraph {
  rankdir=LR; bgcolor="transparent";
  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=12, color="#888888"];
  clean [label="clean encoder\\n(SimCLR)", fillcolor="#d8ecd8"];
  poisoned [label="poisoned encoder\\ntrigger ▶ target", fillcolor="#f6d5d5"];
  purified [label="purified encoder", fillcolor="#d6e4f5"];
  probe [label="downstream probe\\nCA · ASR", shape=ellipse, fillcolor="#f4f4f4"];
  clean -> poisoned [label=" attack\\n BadEncoder / DRUPE"];
  poisoned -> purified [label=" distil on a little clean data\\n teacher · student · loss"];
  {clean poisoned purified} -> probe [style=dashed, color="#aaaaaa"];
}
"""

st.title("Backdoor Distillation Lab")
st.markdown(
    "A **self-supervised image encoder** turns pictures into feature vectors that many downstream "
    "classifiers are then built on. A **backdoored** encoder behaves normally on clean images, but maps any "
    "image carrying a small **trigger** close to an image of the attacker's **target class**, so every "
    "classifier built on it obeys the trigger. Can **distillation**, training a fresh student to imitate the "
    "encoder on a little clean data, wash the backdoor out while keeping its accuracy?"
)
st.graphviz_chart(STORY)
st.caption("CA: clean accuracy of a probe on the encoder's features (BA for the poisoned encoder). "
           "ASR: share of triggered test images classified as the target (ASR-B for the clean encoder).")

st.subheader("The whole story in one click")
demo = make_config("distill", "demo")
st.markdown("Poison the shipped clean encoder with **BadEncoder**, then purify it with the study's "
            "recommendation: a **fine-tuned teacher**, a **warm-up student** and **attention transfer**, plus the "
            "lab's **cosine term** on the final embedding. "
            "Measured in the browser on a 2-core AMD EPYC: 81-89 s with its native bf16, about two minutes on its "
            "laptop profile (AVX2 kernels and fp32, as many laptops run).")
st.caption(f"What runs: {planned_teacher(demo)} from the poisoned encoder; the student trains {demo.epochs} epochs "
           f"on {loss_record(demo)['recipe']}. "
           "The story then sets the purified student beside its teacher alone: "
           "fine-tuning, the simplest defence that could explain the result.")
st.caption("Which part does what, measured over three seeds of both attacks (2-core AMD EPYC, AVX2, fp32; "
           "docs/results.md): from this teacher, attention transfer alone also removes the backdoor (ASR 0.8-4.0%) "
           "but ends 0.5-1.9 points under the accuracy bar on five seeds of six; the cosine term alone removes it "
           "and keeps the accuracy; together they keep the most. From the poisoned encoder itself as teacher "
           "(BadEncoder, seed 0) the cosine term copies its backdoor (ASR 29%) and attention transfer does not "
           "(0.6%): fine-tuning the teacher first is what lets a close copy of its embedding be clean.")
job = current("demo")
if st.button("Run the whole demo", type="primary", disabled=bool(job and job.active)):
    start("demo", "pipeline", {})


@st.cache_resource(show_spinner="Measuring this machine's speed…")
def this_machine_speed() -> float:
    return demo_speed(Runtime.create())


shipped = next((r for r in manager().store.list() if r.get("shipped") and r["kind"] == "pipeline"), None)
shown = None
if job is not None:
    live(job)
    if job.status == "done":
        shown = load_run(job.run_path)
elif shipped is not None:  # nothing run from this tab yet: the story as the lab ships it, pre-computed
    shown = shipped
    note = st.empty()
    note.info(precomputed_note(shipped))
if shown is not None and shown.get("summary"):
    defence_result(shown["summary"])
    st.markdown("**Triggered test images** and what each encoder's downstream classifier says "
                "(:red[**red**]: the attacker's target):")
    gallery(shown)
if job is None and shipped is not None:  # measured once the story is on screen: it takes a second or two
    note.info(f"{precomputed_note(shipped)} On this machine a live run takes about "
              f"{seconds_here(shipped, this_machine_speed()):.0f} s (from its measured speed); press the button to "
              "watch it happen.")

st.subheader("What the lab works with")


@st.cache_data(show_spinner=False)
def samples(name: str, n: int = 30):
    return load_dataset(name, "test", n=n).images


descriptions = describe_datasets()
for col, name in zip(st.columns(2), ("shapes", "signs")):
    with col:
        st.markdown(f"**{name}** — {descriptions[name]}")
        st.image(image_grid(samples(name)[:20], columns=10, scale=3), width="stretch")

triggered = make_trigger("white").apply(to_float(samples("signs")[:10]))
st.image(image_grid(triggered, columns=10, scale=3),
         caption="The default trigger, BadEncoder's white patch (bottom-right), on downstream test images.")

_, meta = read_checkpoint(DEMO_ENCODER)
prov = meta["provenance"]
figures = prov["downstream"]
c1, c2, c3 = st.columns(3)
c1.metric("Shipped clean encoder: probe accuracy", f"{figures['ca_simclr']:.1%}")
c2.metric("Random init, same architecture", f"{figures['ca_random_init']:.1%}")
c3.metric("Pre-training time", f"{prov['seconds']['train'] / 60:.0f} min")
stem = f" with a stride-{meta['stem_stride']} stem" if meta.get("stem_stride", 1) != 1 else ""
st.caption(f"ResNet-18 (CIFAR variant{stem}), width {meta['width']}, trained with `{prov['command']}`.")
