"""Predict page: one input, sent to production (and staging) side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from modelyard.ui.client import ModelInfo, Prediction, ServerClient, ServerError
from modelyard.ui.examples import digit_png, drawing_png, has_ink
from modelyard.ui.settings import ui_settings

settings = ui_settings()
st.title("Predict")

clients: list[tuple[str, ServerClient]] = [
    (role, ServerClient(url, settings.model, api_key=settings.api_key))
    for role, url in settings.servers()
]
infos: dict[str, ModelInfo | ServerError] = {}
for role, client in clients:
    try:
        infos[role] = client.info()
    except ServerError as error:
        infos[role] = error

kinds = {info.kind for info in infos.values() if isinstance(info, ModelInfo)}
text_input: str | None = None
image_input: bytes | None = None

inputs, results = st.columns([1, 2], gap="large")
if not kinds:
    inputs.error("No model server answered, so there is nothing to predict with.")
elif "text" in kinds:
    text_input = inputs.text_area("Text", key="text", placeholder="Type a sentence") or None
else:
    draw, upload, example = inputs.tabs(["Draw", "Upload", "Example"])
    with draw:
        try:
            from streamlit_drawable_canvas import st_canvas
        except Exception as error:  # the [ui] extra installs it; say so rather than fail
            st.info(f"Drawing needs streamlit-drawable-canvas ({error}); upload an image instead.")
        else:
            st.caption("Draw one digit, white on black, filling most of the square.")
            canvas = st_canvas(
                stroke_width=20,
                stroke_color="#FFFFFF",
                background_color="#000000",
                width=224,
                height=224,
                drawing_mode="freedraw",
                return_image_data=True,
                key="canvas",
            )
            if canvas is not None and has_ink(canvas.image_data):
                image_input = drawing_png(canvas.image_data)
    with upload:
        uploaded = st.file_uploader("Image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
        if uploaded is not None:
            image_input = uploaded.getvalue()
    with example:
        # ?example=7 in the URL opens the page with that digit sent (a shareable demo link).
        asked = st.query_params.get("example", "")
        digit = st.selectbox(
            "A digit drawn with a font",
            [None, *range(10)],
            index=int(asked) + 1 if asked.isdigit() and len(asked) == 1 else 0,
            key="example",
        )
        if digit is not None:
            image_input = digit_png(int(digit))
    if image_input is not None:
        inputs.image(image_input, caption="sent to the server", width=112)


def _show(role: str, info: ModelInfo | ServerError, client: ServerClient) -> Prediction | None:
    st.subheader(role.capitalize())
    st.caption(client.url)
    if isinstance(info, ServerError):
        st.error(str(info))
        return None
    st.markdown(f"Model **{info.name}** version **{info.version}**")
    try:
        if text_input is not None and info.kind == "text":
            prediction = client.predict_text(text_input)
        elif image_input is not None and info.kind == "image":
            prediction = client.predict_image(image_input)
        else:
            st.info("Give an input on the left to see this model's answer.")
            return None
    except ServerError as error:
        st.error(str(error))
        return None
    st.metric("Label", prediction.label, border=True)
    st.progress(prediction.confidence, text=f"confidence {prediction.confidence:.1%}")
    chart = pd.DataFrame(
        {"probability": list(prediction.probabilities.values())},
        index=pd.Index(list(prediction.probabilities), name="label"),
    )
    st.bar_chart(chart, y="probability", height=240)
    st.caption(f"answered by {prediction.model} version {prediction.version}")
    return prediction


answers: dict[str, Prediction | None] = {}
for column, (role, client) in zip(results.columns(len(clients)), clients, strict=True):
    with column:
        answers[role] = _show(role, infos[role], client)
    client.close()

production, staging = answers.get("production"), answers.get("staging")
if production is not None and staging is not None:
    if production.label == staging.label:
        results.success(f"Production and staging agree: {production.label}")
    else:
        results.warning(f"Production says {production.label}, staging says {staging.label}")
