"""`python -m classroom.launch.cli ...`: the `classroom` command."""

import sys

from classroom.launch.cli import main

sys.exit(main())
