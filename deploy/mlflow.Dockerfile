# The MLflow tracking server for compose: MLflow plus the PostgreSQL driver (backend
# store) and boto3 (MinIO/S3 artifacts). Clients need neither: with
# --artifacts-destination the server proxies artifact up- and downloads.
# Build from the repository root:
#   docker build -f deploy/mlflow.Dockerfile -t modelyard-mlflow .
# Where Docker Hub is out of reach, pass a base that deploy/debian-python-base.sh
# built: --build-arg PYTHON_IMAGE=<its tag>.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG MLFLOW_VERSION=3.17.2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# A venv, so the same lines work on Debian's own python3 (which refuses system-wide
# pip installs) and on python:3.11-slim.
RUN python -m venv /opt/venv \
    && pip install "mlflow==${MLFLOW_VERSION}" "psycopg[binary]>=3.1" "boto3>=1.34" \
    && useradd --system --uid 10001 --create-home mlflow
USER 10001:10001
WORKDIR /home/mlflow
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
