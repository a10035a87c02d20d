"""empirical: finite-width networks measured with torch, under ntktheory's conventions."""

__all__: list[str] = []
__version__ = "0.1.0"
