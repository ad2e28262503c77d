# Stand-in for compose's MinIO where neither Docker Hub nor MinIO's downloads are
# reachable: moto's S3-compatible server (from PyPI), on MinIO's port 9000. It keeps
# objects in memory; enough for a test, not for users.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG MOTO_VERSION=5.2.6
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
    && pip install "moto[server]==${MOTO_VERSION}" \
    && useradd --system --uid 10001 moto
USER 10001:10001
EXPOSE 9000
ENTRYPOINT ["moto_server", "--host", "0.0.0.0", "--port", "9000"]
