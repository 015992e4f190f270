"""`python -m service`: the same command line as `acne-scar-cds`."""

import sys

from service.cli import main

sys.exit(main(prog="python -m service"))
