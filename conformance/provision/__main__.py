"""Entry point: python -m conformance.provision up|down [options]."""

import sys

from conformance.provision.cli import main

sys.exit(main())
