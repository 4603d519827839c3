"""``python -m auxeng``: see ``auxeng.cli``."""

import sys

from auxeng.cli import main

sys.exit(main())
