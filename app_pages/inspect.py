"""Inspect: where the encoders of a story look on triggered images, and what they make of them."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from distill_core.data.augment import to_float
from distill_core.device import Runtime
from distill_core.inspect import METHODS, QUANTITIES
from distill_core.inspect.attribution import default_method, gradcam_stage
from distill_core.inspect.attention import attention, downstream_task, reading, spread
from distill_core.inspect.embedding import PROJECTIONS, embedding_view
from distill_core.inspect.film import load_film
from distill_core.inspect.story import load_story
from distill_core.models.resnet import STAGES
from distill_core.runs.table import describe, precomputed_note
from distill_core.runs.uploads import checked_image
from distill_core.ui import heat_overlay, image_grid
from webui.jobs import manager
from webui.widgets import ROLE_COLORS, ROLE_NAMES

st.title("Inspect: where do the encoders look?")
st.markdown("On a triggered image the poisoned encoder answers with the attacker's target and looks at the "
            "trigger; a purified one should look at the object again. Heat maps show what drives each encoder's "
            "answer (Captum attributions); the **trigger-attention share** is the part of that heat that falls "
            "on the trigger.")

runs = [r for r in manager().store.list() if r["kind"] in ("attack", "distill", "pipeline") and r["status"] == "done"
        and not r.get("parent")]
if not runs:
    st.info("No finished story yet: run the demo on the Overview page, or an attack on the Attack page.")
    st.stop()
paths = {r["path"]: f"{r['kind']}: {describe(r)}" for r in runs}
path = st.selectbox("Story", list(paths), format_func=paths.get, key="inspect:story")
note = precomputed_note(next(r for r in runs if r["path"] == path))
if note:
    st.info(note + " Run your own from the Overview, Attack or Distill page; it is listed first once done.")


@st.cache_resource(max_entries=4, show_spinner=False)
def story_of(run_path: str):
    """The story, its encoders, its downstream task and each encoder's probe: fitted once per story."""
    story = load_story(run_path)
    encoders = story.encoders()
    evaluator = downstream_task(story, Runtime.create("cpu", "fp32"))
    return story, encoders, evaluator, story.probes(evaluator, encoders)


@st.cache_data(max_entries=32, show_spinner=False)
def seen(run_path: str, method: str, stage: str, quantity: str, n: int, upload: bytes | None = None, name: str = ""):
    story, encoders, evaluator, probes = story_of(run_path)
    images = story.test_images(n).images if upload is None else checked_image(upload, name, story.trigger.size)
    x = story.trigger(to_float(images))
    return x, attention(story, encoders, x, method, stage, quantity, Runtime.create("cpu", "fp32"), evaluator=evaluator,
                        probes=probes)


try:
    story, _, evaluator, _ = story_of(path)
except ValueError as e:
    st.warning(str(e))
    st.stop()

c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Method", list(METHODS), index=list(METHODS).index(default_method(story.shape)),
                      format_func=lambda m: METHODS[m].title, key=f"inspect:method:{path}",
                      help="The default is Grad-CAM, or Integrated Gradients for an encoder with a stride-2 stem, "
                           "whose coarse maps Grad-CAM loses the trigger on")
stage = c2.selectbox("Stage (Grad-CAM)", STAGES, index=STAGES.index(gradcam_stage(story.downstream["downstream"], story.shape)),
                     key=f"inspect:stage:{path}", disabled=method != "gradcam", help="layer4 is the last convolutional stage; "
                     "the default is the deepest stage whose maps resolve the trigger: at least 4 px on the "
                     "embedded data, 8 px on photos, whose texture coarser maps blur the patch into")
quantity = c3.selectbox("Explained value", list(QUANTITIES), format_func=QUANTITIES.get, key="inspect:quantity")
n = c4.select_slider("Images for the figures", [16, 32, 64, 128], value=64, key="inspect:n")

with st.spinner("Attributing…"):
    x, found = seen(path, method, stage, quantity, n)

st.subheader("Trigger-attention share")
area = (story.trigger.mask > 0).float().mean().item()
cols = st.columns(len(found))
for col, (role, f) in zip(cols, found.items()):
    share, sim = spread(f["share"]), spread(f["similarity"])
    col.metric(f"{ROLE_NAMES[role]}", f"{share['mean']:.1%}", help="Mean share of positive attribution inside the "
               f"trigger over {len(x)} triggered test images; ± is the standard deviation")
    col.caption(f"± {share['std']:.1%} · similarity to the target reference {sim['mean']:.2f} ± {sim['std']:.2f}")
st.caption(f"The trigger covers {area:.1%} of the image: attention that ignores position scores about that.")
if sentence := reading(found, evaluator.target):
    st.info(sentence)

st.subheader("Heat maps")
upload = st.file_uploader("Your own image (the trigger is stamped on it)", key="inspect:upload",
                          type=["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"])
picked = st.multiselect("Test images", list(range(min(16, len(x)))), default=list(range(6)), key="inspect:picked",
                        format_func=lambda i: f"#{i}", help="Triggered test images, the target class left out")
picked = picked or [0]
shown_x, shown = x[picked], {role: {k: v[picked] for k, v in f.items()} for role, f in found.items()}
if upload is not None:
    try:
        shown_x, shown = seen(path, method, stage, quantity, 1, upload.getvalue(), upload.name)
    except ValueError as e:
        st.error(f"That file cannot be used: {e}")
st.image(image_grid(shown_x, columns=len(shown_x), scale=4), caption="Triggered images", width="stretch")
for col, (role, f) in zip(st.columns(len(shown)), shown.items()):
    with col:
        st.markdown(f"**{ROLE_NAMES[role]}**")
        st.image(image_grid(heat_overlay(shown_x, f["maps"]), columns=3, scale=4), width="stretch")
        answers = [evaluator.classes[i] for i in f["predicted"].tolist()] if "predicted" in f else []
        st.caption(" · ".join(f":red[**{a}**]" if a == story.target else a for a in answers) +
                   f"  \nsimilarity to the target reference: {f['similarity'].mean():.2f}")

st.subheader("Embeddings")
projection = st.radio("Projection", PROJECTIONS, horizontal=True, key="inspect:projection",
                      format_func={"pca": "PCA", "tsne": "t-SNE"}.get)


@st.cache_data(max_entries=8, show_spinner=False)
def view(run_path: str, projection: str):
    story, encoders, _, _ = story_of(run_path)
    return embedding_view(story, encoders, n=300, method=projection)


try:
    with st.spinner("Projecting…"):
        views = view(path, projection)
except ValueError as e:
    st.error(str(e))
    views = {}
for col, (role, v) in zip(st.columns(max(1, len(views))), views.items()):
    fig = go.Figure()
    for name, points, symbol in (("clean", v["clean"], "circle"), ("triggered", v["triggered"], "x")):
        fig.add_trace(go.Scatter(x=points[:, 0].numpy(), y=points[:, 1].numpy(), mode="markers", name=name, text=v["labels"],
                                 marker={"size": 5, "symbol": symbol, "opacity": 0.7,
                                         "color": pd.Categorical(v["labels"]).codes, "colorscale": "Turbo"}))
    fig.add_trace(go.Scatter(x=v["references"][:, 0].numpy(), y=v["references"][:, 1].numpy(), mode="markers", name="reference",
                             marker={"size": 16, "symbol": "star", "color": "black"}))
    fig.update_layout(title=ROLE_NAMES[role], height=340, margin={"t": 40, "b": 10, "l": 10, "r": 10},
                      legend={"orientation": "h", "y": -0.1}, xaxis={"visible": False}, yaxis={"visible": False})
    col.plotly_chart(fig, width="stretch", key=f"inspect:embedding:{role}")
if views:
    hist = go.Figure([go.Histogram(x=v["similarity"].numpy(), name=ROLE_NAMES[r], marker_color=ROLE_COLORS[r], opacity=0.6,
                                   xbins={"size": 0.02}) for r, v in views.items()])
    hist.update_layout(barmode="overlay", height=260, xaxis_title="cosine similarity of triggered images to the "
                       "target reference", margin={"t": 10}, legend={"orientation": "h", "y": -0.35})
    st.plotly_chart(hist, width="stretch", key="inspect:histogram")

film = load_film(story.weights["distilled"].parent / "film.npz") if "distilled" in story.weights else None
st.subheader("Training film")
if film is None:
    st.info("Distillations record a film of the student's attention at each evaluation; this story has none.")
else:
    name = lambda e: "the poisoned encoder" if e < 0 else f"the student at epoch {e}"
    epoch = st.select_slider("Distillation epoch", film["epochs"], value=film["epochs"][-1], key="inspect:film",
                             format_func=lambda e: "poisoned" if e < 0 else str(e),
                             help="The first frame is the suspicious encoder the distillation started from")
    frame = film["epochs"].index(epoch)
    film_method = METHODS[film["method"]].label + (f" ({film['stage']})" if film["method"] == "gradcam" else "")
    images = to_float(film["images"])
    st.image(image_grid(heat_overlay(images, film["maps"][frame].float()), columns=len(images), scale=4),
             width="stretch", caption=f"{film_method} of the prediction of {name(epoch)}")
    st.caption(f"{name(epoch)[0].upper()}{name(epoch)[1:]} answers: " + " · ".join(
        f":red[**{a}**]" if a == story.target else a for a in film["predicted"][frame]))
