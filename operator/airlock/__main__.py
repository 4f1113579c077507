"""``python -m airlock`` is the same as the ``airlock`` command."""

import sys

from airlock.cli import main

if __name__ == "__main__":
    sys.exit(main.main())
