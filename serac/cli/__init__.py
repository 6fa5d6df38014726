"""Command-line interface (``serac ...``)."""
