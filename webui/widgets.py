"""Widgets the pages share: figure cards, the triggered-image gallery, data pickers, config numbers, uploads."""
from __future__ import annotations

import streamlit as st

from distill_core.data.datasets import SOURCES
from distill_core.runs.gallery import load_gallery
from distill_core.distill.recipe import TEACHER_ALONE, teacher_text, verdict
from distill_core.runs.table import ROLES
from distill_core.ui import image_grid

ROLE_NAMES = {"clean": "Clean encoder", "poisoned": "Poisoned encoder", "distilled": "Purified encoder",
              "teacher_scores": "The teacher alone"}
ROLE_COLORS = {"clean": "#2ca02c", "poisoned": "#d62728", "distilled": "#1f77b4"}
COMPARED_WITH = {"poisoned": "clean", "distilled": "poisoned", "teacher_scores": "poisoned"}  # what a delta is against


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def role_name(summary: dict, role: str) -> str:
    return TEACHER_ALONE.get(summary.get("teacher"), ROLE_NAMES[role]) if role == "teacher_scores" else ROLE_NAMES[role]


def figure_cards(summary: dict, roles: tuple[str, ...]) -> None:
    """One row of cards per encoder of the story: CA and ASR, with the change against the encoder it came from
    (the teacher alone, like the purified student, against the poisoned encoder). A poisoned teacher is the poisoned
    encoder itself: no card of its own."""
    for role in roles:
        fig = summary.get(role)
        if not isinstance(fig, dict) or (role == "teacher_scores" and summary.get("teacher") == "poisoned"):
            continue
        before = summary.get(COMPARED_WITH.get(role, ""))
        ca_name = "BA" if role == "poisoned" else "CA"
        asr_name = "ASR-B" if role == "clean" else "ASR"
        cols = st.columns([1.2, 1, 1, 1])
        cols[0].markdown(f"**{role_name(summary, role)}**")
        if role == "teacher_scores" and summary.get("teacher_budget"):
            cols[0].caption(teacher_text(summary))
        delta = lambda key: None if not isinstance(before, dict) else f"{100 * (fig[key] - before[key]):+.1f} pts"
        cols[1].metric(ca_name, pct(fig.get("ca")), delta("ca"),
                       help="Accuracy of a probe on the encoder's features, clean test images")
        cols[2].metric(asr_name, pct(fig.get("asr")), delta("asr"), delta_color="inverse",
                       help="Triggered test images (target class left out) classified as the target")
        cols[3].metric("ASR-all", pct(fig.get("asr_all")), delta("asr_all"), delta_color="inverse",
                       help="The same over every test image, the target class included")


def defence_result(summary: dict) -> None:
    """The purified student beside its teacher alone, the sentence that says which did better, and the recipe that
    ran, every term and weight."""
    figure_cards(summary, ("clean", "poisoned", "distilled", "teacher_scores"))
    said = summary.get("verdict") or verdict(summary)
    if said:
        st.info(said)
    if summary.get("recipe"):
        st.caption(f"What ran: {summary['recipe']}.")


def gallery(run: dict, columns: int = 8) -> None:
    """Triggered test images with the true class and each encoder's downstream prediction."""
    found = load_gallery(run)
    if found is None:
        return
    images, g = found
    roles = [r for r in ROLES if r in g]
    target = (run.get("summary") or {}).get("target")
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for i, col in enumerate(cols):
            k = start + i
            if k >= len(images):
                break
            col.image(image_grid(images[k:k + 1], columns=1, scale=3, padding=0), width="stretch")
            lines = [f"true: {g['label'][k]}"] + [
                f"{ROLE_NAMES[r].split()[0].lower()}: " + (f":red[**{g[r][k]}**]" if g[r][k] == target else g[r][k])
                for r in roles]
            col.caption("  \n".join(lines))


TORCHVISION = tuple(name for name, source in SOURCES.items() if source.marker)  # read from a data root
TITLES = {"cifar10": "CIFAR-10", "stl10": "STL10", "gtsrb": "GTSRB", "svhn": "SVHN"}


def dataset_picker(label: str, first: str, key: str, help: str | None = None) -> str:
    """A dataset spec, `first` offered first: an embedded set, a torchvision set (read from the data root) or
    `folder:PATH`."""
    names = {first: f"{first} (embedded, no download)" if first not in TORCHVISION else f"{first} (torchvision)",
             **{n: f"{n} (torchvision)" for n in TORCHVISION if n != first}, "folder": "an image folder…"}
    choice = st.selectbox(label, list(names), format_func=names.get, key=key, help=help)
    if choice == "folder":
        path = st.text_input("Folder with train/ and test/ class folders", key=f"{key}:folder",
                             placeholder="/path/to/images")
        return f"folder:{path.strip()}"
    return choice


def data_root_inputs(specs: list[str], key: str) -> dict | None:
    """Where torchvision datasets live (asked only when one is picked), and a button that downloads the
    picked ones that are not there yet; None while one is missing (the page goes no further)."""
    from distill_core.data.datasets import DataError, download, present
    picked = [s for s in dict.fromkeys(specs) if s in TORCHVISION]
    if not picked:
        return {}
    root = st.text_input("Data root for torchvision datasets", "data", key=f"{key}:root")
    missing = [s for s in picked if not present(s, root)]
    if missing:
        names = " / ".join(TITLES[s] for s in missing)
        st.warning(f"{names} {'is' if len(missing) == 1 else 'are'} not under '{root}' yet: download "
                   f"{'it' if len(missing) == 1 else 'them'} (needs internet), set the data root to where "
                   f"{'it is' if len(missing) == 1 else 'they are'}, or pick an image folder.")
        if st.button(f"Download {names}", key=f"{key}:download"):
            try:
                for name in missing:
                    with st.spinner(f"Downloading {TITLES[name]} into '{root}'…"):
                        download(name, root)
            except DataError as e:
                st.error(str(e))
            else:
                st.rerun()
        return None
    return {"data_root": root}


def knob(cfg, name: str, key: str, label: str | None = None, **kw):
    """An input for config field `name`: its value, label, range and tooltip are the field's (`config.opt`);
    `label` and keyword arguments (st.number_input's) override them."""
    from dataclasses import fields
    meta = next(f.metadata for f in fields(cfg) if f.name == name)
    label, value, help = label or meta.get("label") or name.replace("_", " ").capitalize(), getattr(cfg, name), meta["help"]
    if isinstance(value, bool):
        return st.checkbox(label, value=value, help=help, key=key, **kw)
    if isinstance(value, str):
        return st.text_input(label, value=value, help=help, key=key, **kw)
    kind = type(value)
    bounds = {f"{end}_value": kind(meta[limit]) for end, limit in (("min", "low"), ("max", "high")) if limit in meta}
    return st.number_input(label, value=value, help=help, key=key, step=kind(1) if kind is int else None,
                           format=None if kind is int else "%g", **{**bounds, **kw})


def upload_checkpoint(label: str, key: str) -> str | None:
    """An uploaded encoder checkpoint, checked and kept beside the runs; None (and a message) otherwise."""
    from distill_core.runs.uploads import CHECKPOINT_SUFFIXES, checked_checkpoint
    from webui.jobs import manager
    file = st.file_uploader(label, type=[s.lstrip(".") for s in CHECKPOINT_SUFFIXES], key=key,
                            help="Our .safetensors (with its .json sidecar's facts inferred when absent), or a "
                                 "BadEncoder / SimCLR .pth; pickled code is refused, never run.")
    if file is None:
        return None
    try:
        return str(checked_checkpoint(file.getvalue(), file.name, manager().store.root))
    except ValueError as e:
        st.error(f"That checkpoint cannot be used: {e}")
        return None
