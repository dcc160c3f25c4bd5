"""Overview: what the lab is about, the embedded data, and the shipped clean encoder."""
import streamlit as st

from distill_core.data.datasets import describe_datasets, load_dataset
from distill_core.data.triggers import make_trigger
from distill_core.models.checkpoint import read_checkpoint
from distill_core.presets import DEMO_ENCODER
from distill_core.ui import image_grid

st.title("Backdoor Distillation Lab")
st.markdown(
    "Can **distillation** wash a backdoor out of a pre-trained self-supervised image encoder? "
    "This lab pre-trains a clean encoder, poisons it (BadEncoder, DRUPE), purifies it by distillation "
    "and shows what the encoder looks at before and after. The attack and defence pages arrive next; "
    "today the engine pre-trains and evaluates encoders on data it draws itself."
)


@st.cache_data(show_spinner=False)
def samples(name: str, n: int = 30):
    s = load_dataset(name, "test", n=n)
    return s.images, [s.classes[i] for i in s.labels.tolist()]


st.subheader("Embedded data")
descriptions = describe_datasets()
for col, name in zip(st.columns(2), ("shapes", "signs")):
    with col:
        images, labels = samples(name)
        st.markdown(f"**{name}** — {descriptions[name]}")
        st.image(image_grid(images[:20], columns=10, scale=3), width="stretch")

st.subheader("The default trigger")
images, _ = samples("signs")
triggered = make_trigger("white").apply(images[:10].float() / 255)
st.image(image_grid(triggered, columns=10, scale=3),
         caption="BadEncoder's white 10x10 patch, bottom-right, stamped on downstream test images.")

st.subheader("Shipped clean encoder")
_, meta = read_checkpoint(DEMO_ENCODER)
prov = meta["provenance"]
figures = prov["downstream"]
c1, c2, c3 = st.columns(3)
c1.metric("Probe accuracy (SimCLR)", f"{figures['ca_simclr']:.1%}")
c2.metric("Random init, same architecture", f"{figures['ca_random_init']:.1%}")
c3.metric("Pre-training time", f"{prov['seconds']['train'] / 60:.0f} min")
st.caption(f"ResNet-18 (CIFAR variant), width {meta['width']}, trained with `{prov['command']}`.")
