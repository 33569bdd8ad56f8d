"""``python -m handnet.cli ...``: the same as the ``handnet`` command."""

import sys

from . import main

sys.exit(main())
