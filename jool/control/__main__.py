import sys

from jool.control.server import main

sys.exit(main())
