"""``python -m fastgan`` is the ``fastgan`` command."""

import sys

from .cli import main

sys.exit(main())
