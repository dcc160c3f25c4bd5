"""The process-wide job manager and how a page starts, finds and watches its jobs.

Session state keeps only job ids. A browser tab is identified by the `lab` query parameter, so a reloaded
page (same URL) finds its running and finished jobs again.
"""
from __future__ import annotations

import os
import secrets

import pandas as pd
import streamlit as st

from distill_core.presets import STORIES
from distill_core.runs.jobs import Job, JobManager
from distill_core.runs.progress import curves, part, progress
from distill_core.runs.store import RunStore
from distill_core.runs.worker import in_worker
from distill_core.tasks import TASKS, make_config, run_queued

# How often views redraw. The browser usually shares the training machine's cores, and every redraw costs it
# CPU that a training step waits for (measured in-browser demo, 2-core CPU: 149-157 s with status and curves
# every second, 138-148 s with status every 2 s and curves every 4 s; 136 s with no page watching).
POLL_SECONDS = 2.0         # a running job's status line and progress bar
CHART_POLL_SECONDS = 4.0   # its live curves
QUEUED_POLL_SECONDS = 3.0  # a queued job's view and the sidebar's job list: a place in a queue moves slowly
QUEUED_POLL_TIERS = 4      # ... and further back, slower: 3 s next in line, 6 s at 2-3, 12 s at 4-7, 24 s beyond


@st.cache_resource
def manager() -> JobManager:
    """One per server process; `DISTILL_JOBS_PER_DEVICE` jobs run at once per device (default 1). Its store
    lists the pre-computed demo story too, so a fresh server has a story to show."""
    return JobManager(in_worker(run_queued), RunStore(shipped=(STORIES,)),
                      slots=int(os.environ.get("DISTILL_JOBS_PER_DEVICE", "1")))


def owner() -> str:
    """This browser tab's id, kept in the URL so that a reload keeps it."""
    if "owner" not in st.session_state:
        st.session_state.owner = st.query_params.get("lab") or secrets.token_hex(4)
    if st.query_params.get("lab") != st.session_state.owner:
        st.query_params["lab"] = st.session_state.owner  # navigation clears query parameters
    return st.session_state.owner


def start(key: str, task: str, overrides: dict, preset: str = "demo") -> None:
    """Queue `task` (preset <- overrides) as this tab's `key` job and rerun the app to show it; a bad setting
    is shown, not raised."""
    _queue(key, "start", lambda: manager().submit(task, make_config(task, preset, overrides), owner(), key))


def resume(key: str, run_path: str) -> None:
    """Queue a stopped run to carry on from its checkpoint as this tab's `key` job (then as `start`); a refusal
    is shown."""
    _queue(key, "resume", lambda: manager().resume(run_path, owner(), key))


def _queue(key: str, verb: str, submit) -> None:
    try:
        job = submit()
    except ValueError as e:
        st.error(f"Could not {verb}: {e}")
        return
    st.session_state[f"job:{key}"] = job.id
    st.rerun()  # the sidebar was drawn before the page: redraw it with the new job, and poll


def current(key: str) -> Job | None:
    """This tab's latest `key` job (after a reload: the newest one the tab started)."""
    jobs = manager()
    job = jobs.get(st.session_state.get(f"job:{key}"))
    return job or next((j for j in jobs.jobs(owner()) if j.label == key), None)


def status_line(job: Job) -> str:
    if job.status == "queued":
        ahead, device = manager().position(job) - 1, job.device.upper()
        if ahead == 0:
            return f"Queued: yours runs next on the {device}."
        return f"Queued: {ahead} job{'s' * (ahead != 1)} ahead of yours on the {device}."
    if job.status == "running":
        p = progress(job.events)
        if p is None:
            return "Starting: loading data and encoders…"
        left = f", about {p.seconds_left:.0f} s left" if p.seconds_left is not None else ""
        place = f" (part {p.place[0]} of {p.place[1]})" if p.place and p.place[1] > 1 else ""
        return (f"Running {part_name(p.part) or job.task}{place}: {p.unit} {p.done} of {p.total} · "
                f"{p.fraction:.0%} of the job done{left}")
    took = f" in {job.finished - job.started:.0f} s" if job.started and job.finished else ""
    again = " Its last checkpoint is kept: it can be resumed." if TASKS[job.task].resumable else ""
    return {"done": f"Done{took}.", "cancelled": f"Cancelled.{again}", "failed": f"Failed: {job.error}"}[job.status]


def poll_seconds(job: Job) -> float | None:
    """How often a view of `job` redraws: a running job every 2 s; a queued one less often the further back it
    waits (twenty tabs queued behind one job, each redrawing every 3 s, kept the 2-core server busy enough to
    slow the job they waited for), in tiers that double so that a view re-derives its rate only a few times."""
    if job.status == "running":
        return POLL_SECONDS
    if job.status == "queued":
        return QUEUED_POLL_SECONDS * 2 ** min(QUEUED_POLL_TIERS - 1, max(1, manager().position(job)).bit_length() - 1)
    return None


def live(job: Job, charts: bool = True) -> None:
    """Status, progress, cancel and live curves of `job`, redrawn while it is active (the curves less often);
    when it ends the whole page reruns once so that its results appear."""

    def view():
        done_key = f"ended:{job.id}"
        box = {"done": st.success, "cancelled": st.warning, "failed": st.error}.get(job.status, st.info)
        box(status_line(job))
        if job.status == "running":
            p = progress(job.events)
            st.progress(p.fraction if p else 0.0)
        if job.active and st.button("Cancel", key=f"cancel:{job.id}"):
            manager().cancel(job.id)
        if not job.active and not st.session_state.get(done_key):
            st.session_state[done_key] = True
            st.rerun(scope="app")
        if job.active and poll_seconds(job) < every:  # started or moved up a tier: rerun to poll faster
            st.rerun(scope="app")

    running, every = job.status == "running", poll_seconds(job)
    st.fragment(view, run_every=every)()
    if charts:
        def curves_view():
            draw_curves(job.events)

        st.fragment(curves_view, run_every=CHART_POLL_SECONDS if running else None)()


PART_NAMES = {"pretrain": "Pre-training", "attack": "Attack", "distill": "Distillation", "teacher": "fine-tuning the teacher",
              "warmup": "warming up the student", "prune": "fine-pruning the teacher"}


def part_name(part: str) -> str:
    """'distill · teacher' -> 'Distillation · fine-tuning the teacher'."""
    names = [PART_NAMES.get(p, p) for p in part.split(" · ") if p]
    if len(names) == 2 and names[1] == "Distillation":
        names[1] = "distilling"
    return " · ".join(names)


def draw_curves(events: list[dict]) -> None:
    """The latest part's losses and the latest CA/ASR estimates against epochs, on axes as long as the part."""
    parts = curves(events)
    if not parts:
        return
    loss_part = next(reversed(parts))
    quality = next((p for p in reversed(parts) if any("ca" in r for r in parts[p])), None)
    epochs = {part(e): e["epochs"] for e in events if "epochs" in e}
    left, right = st.columns(2)
    with left:
        rows = [r for r in parts[loss_part] if "loss" in r]
        if rows:
            st.caption(f"Loss · {part_name(loss_part) or 'training'}")
            entropy = {k: k.split(".")[1] for k in rows[-1] if k.endswith(".entropy")}
            if "ssl" in rows[-1] and len(rows[-1]) > 3:  # a distillation: its own SimCLR term and the teacher's
                rows = [{**r, "teacher": r["loss"] - r["ssl"]} for r in rows]
                names = {"loss": "total", "ssl": "SimCLR", "teacher": "teacher term (weighted)"}
            else:
                names = {k: k for k in rows[-1] if k not in ("epoch", "ca", "asr", "asr_all", "knn")}
            line_chart(rows, names, "loss", epochs.get(loss_part))
            if entropy:  # AFD's attention over channels: 1 = uniform, 0 = all on one channel
                st.caption("AFD attention entropy per stage (share of uniform; falling = collapsing onto few "
                           "channels)")
                line_chart(rows, entropy, "entropy", epochs.get(loss_part))
    with right:
        if quality is not None:
            st.caption(f"Quick CA / ASR estimates (%) · {part_name(quality) or 'training'}")
            line_chart([r for r in parts[quality] if "ca" in r], {"ca": "CA", "asr": "ASR"}, "%",
                       epochs.get(quality), colors=["#1f77b4", "#d62728"])


def line_chart(rows: list[dict], columns: dict[str, str], y_title: str, x_max: int | None = None,
               colors: list[str] | None = None) -> None:
    """Lines of `columns` (field -> legend name) against epoch. A hand-written Vega-Lite spec: building one
    through Altair costs ~30 ms of the server's time per chart at every redraw, beside a training thread."""
    data = pd.DataFrame([{"epoch": r["epoch"], "term": name, "value": r[field]}
                         for r in rows for field, name in columns.items() if field in r])
    color = {"field": "term", "type": "nominal", "title": None, "legend": {"orient": "bottom"}}
    if colors:
        color["scale"] = {"domain": list(columns.values()), "range": colors}
    st.vega_lite_chart(data, {
        "mark": {"type": "line", "point": len(rows) < 12},
        "encoding": {"x": {"field": "epoch", "type": "quantitative", "title": "epoch",
                           "scale": {"domain": [0, x_max]} if x_max else {}},
                     "y": {"field": "value", "type": "quantitative", "title": y_title},
                     "color": color},
        "height": 220}, width="stretch")

ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:", "done": ":material/check_circle:",
         "cancelled": ":material/stop_circle:", "failed": ":material/error:"}


def sidebar_jobs() -> None:
    """This tab's recent jobs and the server's load, refreshed every few seconds while the tab has a job queued
    or running (every page view costs the browser a render: twenty idle tabs polling every 2 s kept two CPU
    cores 60% busy)."""
    rates = [poll_seconds(j) for j in manager().jobs(owner()) if j.active]

    @st.fragment(run_every=max(QUEUED_POLL_SECONDS, min(rates)) if rates else None)
    def view():
        jobs = manager()
        mine = jobs.jobs(owner())[:6]
        everyone = [j for j in jobs.jobs() if j.active]
        st.markdown("**Jobs**")
        if not mine:
            st.caption("None yet: start one from any page.")
        for job in mine:
            where = f" · #{jobs.position(job)} in queue" if job.status == "queued" else ""
            p = progress(job.events) if job.status == "running" else None
            done = f" · {p.fraction:.0%}" if p else ""
            st.caption(f"{ICONS[job.status]} {job.label}: {job.status}{where}{done}")
        running = sum(j.status == "running" for j in everyone)
        st.caption(f"Server: {running} running, {len(everyone) - running} queued "
                   f"({jobs.slots} at a time per device).")

    view()
