"""compare: theory and finite networks side by side (datasets, gap metrics, sweeps, figures, CLI)."""

__all__: list[str] = []
__version__ = "0.1.0"
