"""Entry point: python -m conformance [bring-up options] [pytest arguments] (see conformance/cli.py)."""

import sys

from conformance.cli import main

sys.exit(main())
