"""Backdoor Distillation Lab: `streamlit run app.py`.

The entry file only declares the navigation and the shared sidebar; each page lives in `pages/` and
every computation is a `distill_core` call.
"""
import streamlit as st

from distill_core.device import Runtime
from webui.jobs import owner, sidebar_jobs

st.set_page_config(page_title="Backdoor Distillation Lab", page_icon="🧪", layout="wide")

pages = [
    st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
    st.Page("pages/attack.py", title="Attack", icon="🦠"),
    st.Page("pages/distill.py", title="Distill", icon="🧪"),
    st.Page("pages/inspect.py", title="Inspect", icon="🔍"),
    st.Page("pages/compare.py", title="Compare", icon="📊"),
]
page = st.navigation(pages)
owner()

with st.sidebar:
    runtime = Runtime.create()
    st.caption(f"Device: **{runtime.describe()['name']}** · {runtime.precision}")
    sidebar_jobs()

page.run()
