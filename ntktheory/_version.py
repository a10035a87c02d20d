"""The distribution's version, from its installed metadata: one source (pyproject.toml) for the
three packages, the CLI and every Dataset's provenance."""

from importlib import metadata

try:
    __version__ = metadata.version("ntkgap")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
