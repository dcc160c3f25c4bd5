"""Inspect: what the encoders of a story make of triggered images.

Attribution maps (where each encoder looks) come with the inspection tools; until then this page shows,
for any finished story, the triggered test images and each encoder's downstream prediction.
"""
import streamlit as st

from distill_core.runs.table import describe, stories
from webui.jobs import manager
from webui.widgets import figure_cards, gallery

st.title("Inspect: what do the encoders see?")
st.markdown("On a triggered image a poisoned encoder answers with the attacker's target; a purified one "
            "should answer with the object again. Attribution maps showing *where* each encoder looks "
            "arrive with the inspection tools.")

runs = {r["id"]: r for r in manager().store.list()}
told = [s for s in stories(list(runs.values())) if "distilled" in s or "poisoned" in s]
if not told:
    st.info("No finished story yet: run the demo on the Overview page, or an attack on the Attack page.")
    st.stop()
pick = st.selectbox("Story", [s["id"] for s in told], format_func=lambda i: f"{runs[i]['kind']}: {describe(runs[i])}",
                    key="inspect:story")
run = runs[pick]
figure_cards(run["summary"], ("clean", "poisoned", "distilled"))
st.markdown("**Triggered test images** with each encoder's downstream prediction (:red[**red**]: the attacker's target):")
gallery(run)
