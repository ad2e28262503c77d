"""The Streamlit entry script (``modelyard ui`` runs it): predict, drift and compare pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).with_name("views")

st.set_page_config(page_title="modelyard", layout="wide")
st.navigation(
    [
        st.Page(VIEWS / "predict.py", title="Predict", default=True),
        st.Page(VIEWS / "drift.py", title="Drift"),
        st.Page(VIEWS / "compare.py", title="Compare"),
    ]
).run()
