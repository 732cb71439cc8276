"""``python -m tokentree`` runs the command line."""

import sys

from tokentree.cli import main

sys.exit(main())
