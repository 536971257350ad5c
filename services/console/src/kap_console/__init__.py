"""The care-team console: a backend-for-frontend that holds no clinical state."""

__version__ = "0.1.0"
