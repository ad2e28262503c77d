"""Compare page: the latest ``modelyard monitor compare`` of two served versions."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from modelyard.ui.compares import latest_compare, models_with_compares
from modelyard.ui.reports import ReportError, monitor_dir

st.title("Compare")
models = models_with_compares()
if not models:
    st.info(
        f"No compare reports in {monitor_dir()}. Serve with shadow= or canary=, then run "
        "`modelyard monitor compare <model>` on the machine that keeps the prediction log."
    )
    st.stop()

model = st.selectbox("Model", models, key="model")
try:
    report = latest_compare(str(model))
except ReportError as error:
    st.warning(str(error))
    st.stop()

data = report.data
low, high = data.get("agreement_ci") or (None, None)
agreement = data.get("agreement")
st.subheader(f"{model}: version {data.get('challenger')} against {data.get('baseline')}")
if agreement is None:
    st.warning("The two versions answered no request in common in this window.")
else:
    st.metric("Agreement", f"{agreement:.3f}")
    st.caption(
        f"{data.get('paired')} requests both versions answered; 95% interval "
        f"{low:.3f} to {high:.3f}. Folder: {report.folder}"
    )
labels = data.get("labels") or []
if labels:
    st.markdown("Labels: baseline (rows) against challenger (columns)")
    st.dataframe(pd.DataFrame(data.get("matrix"), index=labels, columns=labels), width="stretch")
latency = data.get("latency") or {}
if latency:
    st.dataframe(
        pd.DataFrame([{"version": v, **values} for v, values in latency.items()]),
        hide_index=True,
    )
accuracy = data.get("accuracy") or {}
if accuracy:
    rows = [
        {"version": v, **{k: s[k] for k in ("n", "accuracy", "macro_f1")}}
        for v, s in accuracy.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
if report.html is not None:
    with st.expander("Full HTML report"):
        components.html(report.html.read_text(), height=700, scrolling=True)
