"""The ``ordo`` command line: the entry point, ``ordo replica`` and the rollup commands."""
