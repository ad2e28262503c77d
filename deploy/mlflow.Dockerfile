# The MLflow tracking server for compose: MLflow plus the PostgreSQL driver (backend
# store) and boto3 (MinIO/S3 artifacts). Clients need neither: with
# --artifacts-destination the server proxies artifact up- and downloads.
FROM python:3.11-slim
ARG MLFLOW_VERSION=3.17.2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install "mlflow==${MLFLOW_VERSION}" "psycopg[binary]>=3.1" "boto3>=1.34" \
    && useradd --system --uid 10001 --create-home mlflow
USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
