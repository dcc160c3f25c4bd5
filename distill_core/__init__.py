"""Backdoor Distillation Lab engine: data, encoders, SimCLR, attacks, distillation, evaluation, runs.

Never imports streamlit: the app (`app.py`, `pages/`) and the CLI (`python -m distill_core`) are two
thin faces over the same calls.
"""
