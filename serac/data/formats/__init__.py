"""One module per source format, each exporting ``SPECS`` (its :class:`~serac.data.formats.base.FormatSpec` s).

The registry that detects and applies them is :mod:`serac.data.loaders`; :mod:`.base` holds
the row access and the spec every format is built from.
"""
