"""``python -m healthrules``: the command line."""

import sys

from healthrules.cli import main

sys.exit(main())
