"""Clusters of local replica processes: the harness, ``ordo up``, demo load and ``ordo bench``."""
