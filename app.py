"""Backdoor Distillation Lab: `streamlit run app.py`.

The entry file declares the navigation and the shared sidebar; each page lives in `app_pages/` and every
computation is a `distill_core` call. (Not `pages/`: Streamlit treats a folder of that name as legacy
auto-discovered pages when the first request after a start is a page's URL, and then never runs this file.)
"""
import streamlit as st

from distill_core.device import Runtime
from webui.jobs import owner, sidebar_jobs

st.set_page_config(page_title="Backdoor Distillation Lab", page_icon="🧪", layout="wide")

pages = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("app_pages/attack.py", title="Attack", icon=":material/coronavirus:"),
    st.Page("app_pages/distill.py", title="Distill", icon=":material/science:"),
    st.Page("app_pages/inspect.py", title="Inspect", icon=":material/search:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/scatter_plot:"),
]
page = st.navigation(pages)
owner()

with st.sidebar:
    runtime = Runtime.create()
    st.caption(f"Device: **{runtime.describe()['name']}** · {runtime.precision}")
    sidebar_jobs()

page.run()
