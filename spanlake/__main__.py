import sys

from spanlake.cli import main

sys.exit(main())
