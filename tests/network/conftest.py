from __future__ import annotations

import pytest
from netutil import identities

from network import Identity


@pytest.fixture
def ids() -> list[Identity]:
    """Identities of a 4-replica committee on the test chain."""
    return identities(4)
