"""``python -m sequencing.cli``: the same as the ``ordo`` command."""

import sys

from .main import main

sys.exit(main())
