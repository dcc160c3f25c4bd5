"""Backdoor Distillation Lab: `streamlit run app.py`.

The entry file only declares the navigation and the shared sidebar; each page lives in `pages/` and
every computation is a `distill_core` call.
"""
import streamlit as st

from distill_core.device import Runtime

st.set_page_config(page_title="Backdoor Distillation Lab", page_icon="🧪", layout="wide")

pages = [st.Page("pages/overview.py", title="Overview", icon="🏠", default=True)]

with st.sidebar:
    runtime = Runtime.create()
    st.caption(f"Device: **{runtime.describe()['name']}** · {runtime.precision}")

st.navigation(pages).run()
