"""Suite-wide settings: hypothesis profiles.

``ORDO_HYPOTHESIS_PROFILE=slow`` (or the slow tests themselves) run far more examples; the
default profile keeps ``scripts/test`` within its time budget on 2 cores."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "slow",
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("ORDO_HYPOTHESIS_PROFILE", "default"))
