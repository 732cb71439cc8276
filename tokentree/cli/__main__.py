"""``python -m tokentree.cli`` works as ``tokentree`` (and ``python -m tokentree``)."""

import sys

from tokentree.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
