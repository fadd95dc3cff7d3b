# One image for every Lakewire process on the platform (storage service, Dagster webserver,
# daemon and code server, init jobs, JupyterLab): the same locked environment as `make up`.
# Python 3.11, the version CI runs the full `make test` on (3.12 and 3.13 are tested too);
# a patch-pinned tag on Debian 12, as the build machines run.
FROM python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never \
    PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project --no-dev --extra notebook
COPY lakehouse lakehouse
COPY storage_service storage_service
COPY pipelines pipelines
COPY lakewire lakewire
COPY notebooks notebooks
COPY routes.yaml* ./
RUN uv sync --frozen --no-dev --extra notebook && useradd --create-home lakewire
USER lakewire
