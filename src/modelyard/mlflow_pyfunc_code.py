"""MLflow "models from code" entry point: names the pyfunc class without pickling it."""

from mlflow.models import set_model

from modelyard.mlflow_model import BundlePyfunc

set_model(BundlePyfunc())
