"""``python -m emulator``: the vmemu command line."""

import sys

from emulator.cli import main

sys.exit(main())
