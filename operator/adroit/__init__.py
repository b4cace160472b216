"""Adroit: model-serving flavors carried from staging to production on release trains."""

__version__ = "0.1.0"
