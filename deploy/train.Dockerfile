# Training: `modelyard train` with torch (CPU build) and Lightning.
# Build from the repository root:
#   docker build -f deploy/train.Dockerfile -t modelyard-train .
#   docker run -e MLFLOW_TRACKING_URI=http://mlflow:5000 modelyard-train task=mnist5k
# For GPUs, set TORCH_INDEX to a CUDA wheel index (e.g. .../whl/cu128) and run with
# --gpus all; DDP across devices is `train.strategy=ddp train.devices=N`.
# Where that index is out of reach but the wheel is at hand, serve its folder over
# HTTP and pass TORCH_FIND_LINKS=http://<host>:<port>/ and PIP_TRUSTED_HOST=<host>
# (pip ignores plain-HTTP links otherwise), with TORCH_INDEX set to a reachable index
# for torch's own dependencies (tests/e2e does this with the CPU wheel in
# /opt/wheels and PyPI). Beware: PyPI's own torch==2.13.0 is the CUDA build, so a
# wheel pip cannot see is silently replaced by gigabytes of CUDA; the version
# printed below says which one came.
# Where Docker Hub is out of reach, pass a base that deploy/debian-python-base.sh
# built: --build-arg PYTHON_IMAGE=<its tag>.

ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
ARG PIP_TRUSTED_HOST
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# torch first and pinned: nothing installed later may swap in another build. Its
# own layer, so a change to the source does not download torch again.
# hadolint ignore=DL3013,DL3059
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX}" \
      ${TORCH_FIND_LINKS:+--find-links "${TORCH_FIND_LINKS}"} \
    && python -c "import torch; print('torch', torch.__version__)"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/
COPY src ./src
# The project from source, its dependencies at the versions CI tested
# (requirements/constraints.txt, less its torch line: the build installed above,
# CPU or CUDA, stays).
# hadolint ignore=DL3013
RUN grep -v '^torch==' requirements/constraints.txt >/tmp/constraints.txt \
    && pip install -c /tmp/constraints.txt ".[train]" \
    && useradd --system --uid 10001 --home-dir /home/modelyard --create-home modelyard
USER 10001:10001
WORKDIR /home/modelyard
ENV MODELYARD_HOME=/home/modelyard/.modelyard \
    MODELYARD_DATA_DIR=/home/modelyard/.cache/modelyard/data
ENTRYPOINT ["modelyard", "train"]
CMD ["task=mnist5k"]
