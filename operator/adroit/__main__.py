import sys

from adroit.cli import main

sys.exit(main())
