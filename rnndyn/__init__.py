"""rnndyn."""
