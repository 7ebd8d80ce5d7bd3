import sys

from naftiko.cli import main

sys.exit(main())
