"""``python -m satcnn``."""

import sys

from satcnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
