"""Prefect flows of the serac pipeline: thin wrappers, one task per ``serac`` function."""
