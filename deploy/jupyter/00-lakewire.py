# IPython startup file for the platform's JupyterLab: every kernel starts with `minio` (the
# Object Storage helpers, lakehouse.files) ready, e.g. minio.read_csv("co2-data/x.csv").
# Install it as <IPython profile>/startup/00-lakewire.py (IPYTHONDIR). `minio` is an object,
# not a module, so `import minio` (the SDK) is unaffected.
from lakehouse.notebook import lake, minio  # noqa: F401
