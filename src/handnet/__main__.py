"""``python -m handnet ...``: the same as the ``handnet`` command."""

import sys

from .cli import main

sys.exit(main())
