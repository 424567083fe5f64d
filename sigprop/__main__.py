"""``python -m sigprop``: the same command line as ``sigprop``."""
import sys

from .cli import main

sys.exit(main())
