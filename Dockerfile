# One image for every Lakewire process on the platform (storage service, Dagster webserver,
# daemon and code server, init jobs, JupyterLab): the same locked environment as `make up`.
# Python 3.11, the version CI runs the full `make test` on (3.12 and 3.13 are tested too);
# a patch-pinned tag on Debian 12, as the build machines run.
FROM python:3.11.14-slim-bookworm

# UV_COMPILE_BYTECODE: every Dagster run worker imports the whole stack afresh; without .pyc
# files in the image each one compiles it again (the Makefile's note: it doubles start time),
# and as the non-root user it could not even write them.
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-dev --extra notebook
COPY lakehouse lakehouse
COPY storage_service storage_service
COPY pipelines pipelines
COPY lakewire lakewire
COPY routes.yaml hive_tables.yaml ./
RUN uv sync --frozen --no-dev --extra notebook \
    && python -m compileall -q lakehouse storage_service pipelines lakewire

# The non-root user (uid 10001, the uid lakewire.platform_secrets gives this image's secret
# folders) owns exactly the places it writes: the data dir and Trino's generated rules (named
# volumes in compose; a new volume copies this ownership), DAGSTER_HOME (compute logs are
# staged here before S3), and the notebook folder JupyterLab saves into.
RUN groupadd --gid 10001 lakewire \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/lakewire lakewire \
    && mkdir -p /var/lib/lakewire /var/lib/lakewire-trino /opt/dagster/home/compute_logs \
    && chown -R lakewire:lakewire /var/lib/lakewire /var/lib/lakewire-trino /opt/dagster/home
COPY --chown=10001:10001 deploy/dagster/dagster.yaml deploy/dagster/workspace.yaml /opt/dagster/home/
COPY --chown=10001:10001 notebooks /home/lakewire/notebooks
# Every kernel of the platform's JupyterLab starts with `minio` (the Object Storage helpers).
COPY --chown=10001:10001 deploy/jupyter/00-lakewire.py \
     /home/lakewire/.ipython/profile_default/startup/00-lakewire.py
ENV LAKEWIRE_DATA_DIR=/var/lib/lakewire DAGSTER_HOME=/opt/dagster/home
USER 10001:10001
