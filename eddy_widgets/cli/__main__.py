import sys

from eddy_widgets.cli.example import main

sys.exit(main())
