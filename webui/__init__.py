"""Streamlit pieces the pages share: the job manager, live job views and result widgets.

Only the app imports this package; every computation it shows is a `distill_core` call.
"""
