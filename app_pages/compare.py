"""Compare: every run in the store as a table and each story as a path in the CA-vs-ASR plane; and a
sweep's table as the study's heatmaps."""
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from distill_core.runs.table import ROLES, precomputed_note, row, stories
from distill_core.sweep import table as sweep_table
from distill_core.sweep.heatmaps import METRICS, export, heatmap_figure, load_results, pairs
from webui.jobs import manager
from webui.widgets import ROLE_COLORS, ROLE_NAMES

st.title("Compare runs")
runs = manager().store.list()
runs_tab, sweep_tab = st.tabs(["Runs", "Sweep heatmaps"])

with runs_tab:
    damaged = [r for r in runs if r["status"] == "damaged"]
    if damaged:
        st.warning(f"{len(damaged)} run folder{'s' * (len(damaged) > 1)} cannot be read and {'are' if len(damaged) > 1 else 'is'} "
                   "listed as damaged (left as found on disk):\n" + "\n".join(f"- `{r['id']}`: {r['error']}" for r in damaged))
    if not runs:
        st.info("No runs yet: start one from the Overview, Attack or Distill page.")
    else:
        table = pd.DataFrame([row(r) for r in runs])
        f1, f2, f3 = st.columns([2, 2, 3])
        kinds = f1.multiselect("Kind", sorted(table["kind"].unique()), key="compare:kind")
        statuses = f2.multiselect("Status", sorted(table["status"].unique()), key="compare:status")
        text = f3.text_input("Contains", key="compare:text", placeholder="e.g. drupe, at, 20261125")
        shown = table
        if kinds:
            shown = shown[shown["kind"].isin(kinds)]
        if statuses:
            shown = shown[shown["status"].isin(statuses)]
        if text:
            shown = shown[shown.astype(str).apply(lambda r: r.str.contains(text, case=False, regex=False)).any(axis=1)]
        s1, s2 = st.columns([2, 1])
        by = s1.selectbox("Sort by", list(table.columns), index=list(table.columns).index("started"), key="compare:sort")
        descending = s2.toggle("Descending", True, key="compare:desc")
        shown = shown.sort_values(by, ascending=not descending, na_position="last")
        st.dataframe(shown, hide_index=True, width="stretch")
        shown_ids = set(shown["id"])
        notes = {precomputed_note(r) for r in runs if r["id"] in shown_ids} - {""}
        for note in notes:
            st.info(note + " Its rows say so in the note column; your own runs are listed above it.")
        st.caption("CA % is the accuracy of the encoder the run produced (BA for an attack); ASR % its attack success "
                   "rate; the note says why a run failed, stopped or cannot be read. Click a column header to sort as well.")
        st.download_button("Export the table (CSV)", shown.to_csv(index=False), "runs.csv", "text/csv")

        st.subheader("Clean → poisoned → purified")
        paths = [s for s in stories(runs) if s["id"] in set(shown["id"])]
        if not paths:
            st.info("Finished attack, distillation or pipeline runs appear here as points.")
        else:
            fig = go.Figure()
            for s in paths:
                roles = [r for r in ROLES if r in s]
                fig.add_trace(go.Scatter(x=[100 * s[r]["asr"] for r in roles], y=[100 * s[r]["ca"] for r in roles],
                                         mode="lines", line={"color": "#bbbbbb", "width": 1}, showlegend=False,
                                         hoverinfo="skip"))
            for role in ROLES:
                points = [s for s in paths if role in s]
                fig.add_trace(go.Scatter(
                    x=[100 * s[role]["asr"] for s in points], y=[100 * s[role]["ca"] for s in points], mode="markers",
                    name=ROLE_NAMES[role], marker={"color": ROLE_COLORS[role], "size": 11},
                    text=[f"{s['label']} ({s['id']})" for s in points],
                    hovertemplate="%{text}<br>ASR %{x:.1f}%<br>CA %{y:.1f}%<extra>" + ROLE_NAMES[role] + "</extra>"))
            fig.update_layout(xaxis_title="ASR (%)", yaxis_title="CA (%)", height=460, margin={"t": 20},
                              xaxis={"range": [-3, 103]}, legend={"orientation": "h", "y": -0.18})
            st.plotly_chart(fig, width="stretch")
            st.caption("Each grey path is one story: the clean encoder (ASR-B), the poisoned one (BA, ASR) and, once "
                       "distilled, the purified one. Up and to the left is better.")

with sweep_tab:
    sweeps = {r["id"]: r for r in runs if r.get("kind") == "sweep" and (Path(r["path"]) / "results.json").is_file()}
    c1, c2 = st.columns([3, 2])
    picked = c1.selectbox("Sweep in the run store", list(sweeps), index=0 if sweeps else None, key="compare:sweep",
                          placeholder="none yet",
                          format_func=lambda i: f"{i} · {sweeps[i]['status']} · "
                                                f"{(sweeps[i].get('summary') or {}).get('rows', '?')} cells")
    upload = c2.file_uploader("…or a sweep's results.json / results.csv", type=["json", "csv"], key="compare:upload")
    rows = None
    try:
        if upload is not None:
            rows = load_results(upload.getvalue(), upload.name)
        elif picked:
            rows = load_results(sweeps[picked]["path"])
    except (ValueError, OSError) as e:
        st.error(f"That table cannot be read: {e}")
    if rows is None:
        st.info("A sweep crosses attacks, downstreams, teachers, students, losses and seeds, e.g. "
                "`python -m distill_core sweep --grid grid.yaml` (see the README). Its table appears here.")
    else:
        story_names = [f"{a} → {d}" for a, d in sweep_table.attack_downstreams(rows)]
        a, d = sweep_table.attack_downstreams(rows)[story_names.index(st.selectbox("Attack → downstream", story_names,
                                                                        key="compare:story"))]
        start = next(r for r in sweep_table.attacks_table(rows) if (r["attack"], r["downstream"]) == (a, d))
        st.caption(f"Target **{start['target']}**. Before the defence: clean encoder CA {start['clean_ca']}%, "
                   f"ASR-B {start['asr_b']}%; poisoned encoder BA {start['ba']}%, ASR {start['asr_before']}%. "
                   "Each cell is the purified encoder's mean over seeds; the third part is held at the study's "
                   "choice (framed: fine-tuned teacher, warm-up student, AT loss) where the sweep has it, and the "
                   "placement at the sweep's first. A sweep of several placements also shows each loss under each.")
        for row_factor, col_factor in pairs(rows):
            for column, metric in zip(st.columns(len(METRICS)), METRICS):
                with column:
                    fig = heatmap_figure(rows, row_factor, col_factor, metric, a, d)
                    png = export(fig, "png")
                    st.image(png, width="stretch")
                    name = f"{metric}-{row_factor}-x-{col_factor}-{a}-{d}"
                    b1, b2 = st.columns(2)
                    b1.download_button("PNG", png, f"{name}.png", "image/png", key=f"png:{name}")
                    b2.download_button("SVG", export(fig, "svg"), f"{name}.svg", "image/svg+xml", key=f"svg:{name}")
        with st.expander("Tables (mean ± std over seeds)"):
            tables = sweep_table.summary_tables(rows)
            for name, t in tables.items():
                st.markdown(f"**{name.replace('_', ' ')}**")
                st.dataframe(pd.DataFrame(sweep_table.formatted(t)), hide_index=True, width="stretch")
            st.download_button("All tables (Markdown)", sweep_table.markdown_all(tables), "tables.md",
                               "text/markdown")
