# driftloop: one image for every in-cluster role (KFP component steps, KServe predictor and
# Feast transformer, the prediction-log sink, MLflow and Feast servers, the PostSync job).
# Build: docker build -t ghcr.io/driftloop/driftloop:0.1.0 .
# The base is pinned to a full patch version; CI (or Renovate) may append the @sha256
# digest it resolved, which the tests accept. No HEALTHCHECK: Kubernetes probes do that.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    DRIFTLOOP_WORKDIR=/tmp/driftloop \
    MPLCONFIGDIR=/tmp/matplotlib

# The unprivileged user every container runs as (manifests set runAsUser: 10001 too).
RUN groupadd --system --gid 10001 driftloop \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin driftloop \
 && python -m venv "$VIRTUAL_ENV"

WORKDIR /app

# Layer 1, dependencies only: it is rebuilt when pyproject.toml or constraints.txt change,
# not on every source edit. psycopg2-binary and redis are the cluster backends of MLflow
# (PostgreSQL) and Feast (Redis online store, SQL registry); both are pinned in constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --upgrade -c constraints.txt pip \
 && pip install -c constraints.txt -r /tmp/requirements.txt psycopg2-binary redis \
 && rm /tmp/requirements.txt

# Layer 2, the source. An editable install keeps policies/, feature_repo/ and
# pipelines/compiled/ beside the code, where components.settings finds them (/app).
COPY README.md ./
COPY driftloop ./driftloop
COPY components ./components
COPY serving ./serving
COPY pipelines ./pipelines
COPY feature_repo ./feature_repo
COPY policies ./policies
# /app stays owned by root: the runtime user can read it but not change it.
RUN pip install --no-deps -c constraints.txt -e . \
 && python -c "import driftloop.cli"

USER 10001:10001

ENTRYPOINT ["driftloop"]
CMD ["--help"]
