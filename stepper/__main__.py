"""`python -m stepper` runs the command line."""

import sys

from stepper.cli import main

sys.exit(main())
