"""Which optional extra provides which import: the one home of that fact.

A plain ``pip install modelyard`` (or ``modelyard[serve]``) leaves the heavy parts
out, so a command that needs one fails on its import. The CLI turns that failure
into one line naming the extra to install instead of a traceback.
"""

from __future__ import annotations

EXTRA_FOR_MODULE: dict[str, str] = {
    "torch": "train",
    "lightning": "train",
    "onnx": "train",
    "mlxtend": "train",
    "pooch": "train",
    "pyarrow": "train",
    "tqdm": "train",
    "mlflow": "tracking",
    "sklearn": "tracking",
    "pandas": "tracking",
    "matplotlib": "tracking",
    "scipy": "monitor",
    "psycopg": "monitor",
    "sqlalchemy": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "optuna": "tune",
    "streamlit": "ui",
    "streamlit_drawable_canvas": "ui",
    "httpx": "ui",
}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """One line saying which extra brings the missing module, or None if none does."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_FOR_MODULE.get(module)
    if extra is None:
        return None
    return (
        f"this command needs {module}, which the installed extras leave out; "
        f"install it with: pip install 'modelyard[{extra}]'"
    )
