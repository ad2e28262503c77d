"""Predict page: one input, sent to production (and staging) side by side."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

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


def _ask_text(container: DeltaGenerator) -> str | None:
    return container.text_area("Text", key="text", placeholder="Type a sentence") or None


def _ask_image(container: DeltaGenerator) -> bytes | None:
    image: bytes | None = None
    draw, upload, example = container.tabs(["Draw", "Upload", "Example"])
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
                image = drawing_png(canvas.image_data)
    with upload:
        uploaded = st.file_uploader("Image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"])
        if uploaded is not None:
            image = uploaded.getvalue()
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
            image = digit_png(int(digit))
    if image is not None:
        container.image(image, caption="sent to the server", width=112)
    return image


@dataclass(frozen=True)
class InputWidget:
    """How this page takes one input of a kind and sends it to a server."""

    ask: Callable[[DeltaGenerator], Any]
    """Shows the widget; returns the input, or None while there is none."""
    send: Callable[[ServerClient, Any], Prediction]


WIDGETS: dict[str, InputWidget] = {
    "text": InputWidget(_ask_text, ServerClient.predict_text),
    "image": InputWidget(_ask_image, ServerClient.predict_image),
}
"""The server's reported kind (``ModelInfo.kind``) -> its widget, first match wins when
production and staging differ. The UI reaches models over HTTP only, so it keeps its
own Streamlit widgets here rather than asking modelyard.modality (server-side code)."""

kinds = {info.kind for info in infos.values() if isinstance(info, ModelInfo)}
asked_kind = next((kind for kind in WIDGETS if kind in kinds), None)
given: Any = None

inputs, results = st.columns([1, 2], gap="large")
if not kinds:
    inputs.error("No model server answered, so there is nothing to predict with.")
elif asked_kind is None:
    inputs.error(f"This page has no input for {', '.join(sorted(kinds))} models.")
else:
    given = WIDGETS[asked_kind].ask(inputs)


def _show(role: str, info: ModelInfo | ServerError, client: ServerClient) -> Prediction | None:
    st.subheader(role.capitalize())
    st.caption(client.url)
    if isinstance(info, ServerError):
        st.error(str(info))
        return None
    st.markdown(f"Model **{info.name}** version **{info.version}**")
    try:
        if given is None or info.kind != asked_kind:
            st.info("Give an input on the left to see this model's answer.")
            return None
        prediction = WIDGETS[asked_kind].send(client, given)
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
