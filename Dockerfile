# One image for every Lakewire process on the platform (storage service, Dagster webserver,
# daemon and code server, init jobs, JupyterLab): the same locked environment as `make up`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
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
