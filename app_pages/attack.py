"""Attack: poison a clean encoder with BadEncoder or DRUPE and watch the backdoor go in."""
import streamlit as st

from distill_core.attacks import ATTACKS
from distill_core.data.augment import to_float
from distill_core.data.datasets import default_target, load_dataset
from distill_core.data.triggers import TRIGGERS, default_patch, make_trigger
from distill_core.models.checkpoint import read_checkpoint
from distill_core.presets import CIFAR_ENCODER, DEMO_ENCODER, TRAINED_ON, preset_encoder
from distill_core.runs.store import load_run
from distill_core.runs.table import describe
from distill_core.runs.uploads import checked_trigger_image
from distill_core.tasks import make_config
from distill_core.ui import image_grid
from webui.jobs import current, live, manager, start
from webui.widgets import data_root_inputs, dataset_picker, figure_cards, gallery, knob, upload_checkpoint

st.title("Attack: plant a backdoor")
st.markdown("The attacker fine-tunes a copy of a clean encoder on **shadow data** so that images carrying "
            "the **trigger** embed like **reference images** of the target class, while clean images embed "
            "as before. BadEncoder with the defaults takes about 16 s on the demo setup and 60-70 s on real photos on "
            "2-core AMD EPYCs with native bf16; 25 s and 95-130 s on their laptop profile (AVX2 kernels, fp32).")

SETUPS = {"demo": "Demo: embedded shapes → signs (offline)", "cifar": "Real photos: CIFAR-10 → a real task"}
FIRST = {"demo": ("shapes", "signs"), "cifar": ("cifar10", "stl10")}  # each setup's shadow and downstream data

left, right = st.columns(2)
with left:
    st.subheader("Data")
    setup = st.radio("Setup", list(SETUPS), format_func=SETUPS.get, horizontal=True, key="attack:setup",
                     help="Real photos start from the shipped real-image encoder; a folder of your own photos "
                          "(train/ and test/ class folders) works as shadow data and as the downstream task.")
    shadow = dataset_picker("Shadow data (the attacker's share of pre-training data)", FIRST[setup][0],
                            f"attack:{setup}:data")
    downstream = dataset_picker("Downstream task (where the backdoor should fire)", FIRST[setup][1],
                                f"attack:{setup}:downstream")
    data = data_root_inputs([shadow, downstream], "attack")

with right:
    st.subheader("Clean encoder")
    runs = [r for r in manager().store.list() if r["kind"] == "pretrain" and r["status"] == "done"]
    first = preset_encoder(setup, FIRST[setup][0])  # the setup's own shipped encoder, then the other
    shipped = sorted({CIFAR_ENCODER: "real-image", DEMO_ENCODER: "demo"}.items(), key=lambda kv: kv[0] != first)
    choices = {**{str(path): f"Shipped {kind} encoder (width {read_checkpoint(path)[1]['width']}, pre-trained on "
                             f"{TRAINED_ON[path]})" for path, kind in shipped},
               **{r["summary"]["encoder"]: f"Pre-trained here: {describe(r)}" for r in runs},
               "upload": "Upload a checkpoint…"}
    encoder = st.selectbox("Encoder to poison", list(choices), format_func=choices.get, key=f"attack:{setup}:encoder")
    if encoder == "upload":
        encoder = upload_checkpoint("Clean encoder checkpoint", "attack:upload")
    if setup == "demo":
        with st.expander("Pre-train a new clean encoder (on a 2-core CPU: about 70 s with native bf16, 2 minutes "
                         "with AVX2 and fp32)"):
            pre = make_config("pretrain", "demo")
            c1, c2, c3 = st.columns(3)
            with c1:
                pre_epochs = knob(pre, "epochs", "pretrain:epochs", "Pre-training epochs", min_value=1)
            with c2:
                n_train = knob(pre, "n_train", "pretrain:n", "Pre-training images", min_value=256)
            with c3:
                width = st.select_slider("Width", [0.125, 0.25, 0.5, 1.0], value=pre.width, key="pretrain:width")
            job = current("pretrain")
            if st.button("Pre-train", disabled=bool(job and job.active) or data is None):
                start("pretrain", "pretrain", {"data": shadow, "downstream": downstream, "epochs": pre_epochs,
                                               "n_train": n_train, "width": width, **data})
            if job is not None:
                live(job, charts=False)
    else:
        st.caption("The real-image encoder took 450 SimCLR epochs (3.5 minutes on an H200 GPU, hours on a CPU): "
                   "`python -m distill_core pretrain --preset cifar` makes another where you have a GPU.")

if data is None:  # a picked dataset is not there yet: the Data column says how to get it
    st.stop()
size = 32
if encoder:
    try:
        size = read_checkpoint(encoder)[1].get("input_size", 32)
    except ValueError as e:
        st.error(str(e))
        encoder = None

st.subheader("Attack")
name = st.radio("Attack", list(ATTACKS), format_func=lambda n: ATTACKS[n].shown, horizontal=True, key="attack:name")
chosen = ATTACKS[name]
st.caption(f"{chosen.shown} ({chosen.cite}): {chosen.title}")
if chosen.caveat:
    st.caption(chosen.caveat)
cfg = make_config("attack", setup, {"attack": name})
own = ("epochs", "n_shadow", "lr", "batch_size", *chosen.knobs)  # every attack's, then its own
settings = {}
for col, field in zip(st.columns(len(own)), own):
    with col:
        settings[field] = knob(cfg, field, f"attack:{setup}:{name}:{field}")

st.subheader("Trigger")
t1, t2 = st.columns([1, 2])
with t1:
    pattern = st.selectbox("Pattern", list(TRIGGERS), key="attack:pattern", format_func=lambda p: TRIGGERS[p].shown,
                           help="Where a pattern comes from, and how it is stamped: docs/methods.md")
    knobs = TRIGGERS[pattern].knobs
    options = {}
    if "alpha" in knobs:
        options["alpha"] = st.slider("Opacity", 0.02, 0.5, 0.2, key="attack:alpha")
    if "size" in knobs:
        options["size"] = st.slider("Size (pixels)", 2, size // 2, default_patch(size), key="attack:size")
    if "pos" in knobs:
        options["pos"] = st.selectbox("Position", ["br", "bl", "tr", "tl", "center"], key="attack:pos",
                                      format_func={"br": "bottom right", "bl": "bottom left", "tr": "top right",
                                                   "tl": "top left", "center": "centre"}.get)
    if "path" in knobs:
        file = st.file_uploader("Trigger image (its alpha channel is the mask)", key="attack:trigger_file",
                                type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
        options["path"] = None
        if file is not None:
            try:
                options["path"] = checked_trigger_image(file.getvalue(), file.name, manager().store.root)
            except ValueError as e:
                st.error(f"That image cannot be a trigger: {e}")
    spec = None if options.get("path", "") is None else \
        f"{pattern}:" + ",".join(f"{k}={v}" for k, v in sorted(options.items(), key=lambda kv: kv[0] != "path"))
if "folder:" in (shadow, downstream):
    st.info("Enter the image folder's path to go on.")
    st.stop()
where = {"root": data.get("data_root", "data"), "size": size}
try:
    test = load_dataset(downstream, "test", n=200, **where)
    train = load_dataset(downstream, "train", **where)
except (ValueError, OSError) as e:
    st.error(f"The downstream data cannot be read: {e}")
    st.stop()
with t2:
    if spec:
        try:
            preview = make_trigger(spec, size).apply(to_float(test.images[:8]))
            st.image(image_grid(preview, columns=8, scale=3), caption="Live preview on downstream test images",
                     width="stretch")
        except ValueError as e:
            st.error(f"That trigger cannot be made: {e}")
            spec = None

st.subheader("Target")
g1, g2 = st.columns([1, 2])
with g1:
    usual = default_target(downstream)
    target = st.selectbox("Target class", train.classes, key="attack:target",
                          index=train.classes.index(usual) if usual in train.classes else 0)
    auto = st.radio("Reference images", ["auto", "pick"], key="attack:refs", format_func={
        "auto": "the ones the clean encoder's probe is surest of", "pick": "picked from the gallery"}.get)
with g2:
    pool = train.of_class(train.class_index(target))
    shown = min(len(pool), 24)
    st.image([image_grid(pool.images[i:i + 1], columns=1, scale=3, padding=0) for i in range(shown)],
             caption=[f"#{i}" for i in range(shown)], width=56)
    picked = st.multiselect("References", list(range(shown)), key="attack:picked", format_func=lambda i: f"#{i}",
                            disabled=auto == "auto", help="Indices among the target class's training images")

ready = bool(encoder and spec and (auto == "auto" or picked))
job = current("attack")
if st.button("Run the attack", type="primary", disabled=not ready or bool(job and job.active)):
    overrides = {"attack": name, "encoder": encoder, "data": shadow, "downstream": downstream, "trigger": spec,
                 "target": target, **settings, **data}
    if auto == "pick":
        overrides.update(ref_indices=",".join(map(str, picked)), n_refs=len(picked))
    start("attack", "attack", overrides, preset=setup)
if job is not None:
    st.subheader("Training")
    live(job)
    if job.status == "done":
        run = load_run(job.run_path)
        st.subheader("Results")
        figure_cards(run["summary"], ("clean", "poisoned"))
        st.markdown("**Triggered test images** with each encoder's downstream prediction (:red[**red**]: the attacker's target):")
        gallery(run)
        st.info("Next: purify this encoder on the **Distill** page.")
