import sys

from ganwatch.cli import main

sys.exit(main())
