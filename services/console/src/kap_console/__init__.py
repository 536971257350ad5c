"""The care-team console: a backend-for-frontend that holds no clinical state."""
