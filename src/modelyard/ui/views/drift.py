"""Drift page: the latest verdict of ``modelyard monitor drift`` and its plots."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from modelyard.monitor.report import describe_model, describe_window
from modelyard.ui.client import ServerClient, ServerError
from modelyard.ui.reports import ReportError, latest_report, models_with_reports, monitor_dir
from modelyard.ui.settings import ui_settings

settings = ui_settings()
st.title("Drift")

models = models_with_reports()
served: str | None = settings.model
if served is None:
    client = ServerClient(settings.server, api_key=settings.api_key, timeout=3)
    try:
        served = client.model_name()
    except ServerError:
        served = None  # the page still shows reports on disk
    finally:
        client.close()
choices = sorted({*models, *([served] if served else [])})

if not choices:
    st.info(
        f"No drift reports in {monitor_dir()}. Run `modelyard monitor drift <model>` "
        "on the machine that keeps the prediction log."
    )
    st.stop()

model = st.selectbox(
    "Model", choices, index=choices.index(served) if served in choices else 0, key="model"
)
try:
    report = latest_report(str(model))
except ReportError as error:
    st.warning(str(error))
    st.stop()

verdict = report.verdict
window = verdict.get("window")
checked = describe_model(verdict.get("model") or model, verdict.get("version"))
if report.drift:
    st.error(f"Drift detected on {checked}")
else:
    st.success(f"No drift on {checked}")
created = verdict.get("created")
st.caption(
    ("Report" + (f" of {created}" if created else ""))
    + (f": {describe_window(window)}" if isinstance(window, dict) else "")
    + f". Folder: {report.folder}"
)

if report.checks:
    table = pd.DataFrame(report.checks)
    columns = [c for c in ("name", "kind", "statistic", "p_value", "psi", "drift") if c in table]
    st.dataframe(table[columns], hide_index=True, width="stretch")
    drifted = [str(check.get("name")) for check in report.checks if check.get("drift")]
    if drifted:
        st.markdown("Checks that moved: " + ", ".join(f"`{name}`" for name in drifted))

for plot in report.plots:
    st.image(str(plot), caption=plot.stem.replace("_", " "))

if report.html is not None:
    html = report.html.read_text()
    st.download_button("Download report.html", html, file_name="report.html", mime="text/html")
    with st.expander("Full HTML report"):
        components.html(html, height=700, scrolling=True)
