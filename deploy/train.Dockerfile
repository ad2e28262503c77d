# Training: `modelyard train` with torch (CPU build) and Lightning.
# Build from the repository root:
#   docker build -f deploy/train.Dockerfile -t modelyard-train .
#   docker run -e MLFLOW_TRACKING_URI=http://mlflow:5000 modelyard-train task=mnist5k
# For GPUs, set TORCH_INDEX to a CUDA wheel index (e.g. .../whl/cu128) and run with
# --gpus all; DDP across devices is `train.strategy=ddp train.devices=N`.
# Where Docker Hub is out of reach, pass a base that deploy/debian-python-base.sh
# built: --build-arg PYTHON_IMAGE=<its tag>.

ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# torch first and pinned: nothing installed later may swap in another build. Its
# own layer, so a change to the source does not download torch again.
# hadolint ignore=DL3059
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# DL3013 wants pinned versions; this installs the project itself from source.
# hadolint ignore=DL3013
RUN pip install ".[train]" \
    && useradd --system --uid 10001 --home-dir /home/modelyard --create-home modelyard
USER 10001:10001
WORKDIR /home/modelyard
ENV MODELYARD_HOME=/home/modelyard/.modelyard \
    MODELYARD_DATA_DIR=/home/modelyard/.cache/modelyard/data
ENTRYPOINT ["modelyard", "train"]
CMD ["task=mnist5k"]
