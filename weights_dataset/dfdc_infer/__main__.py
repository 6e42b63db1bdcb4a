"""``python -m dfdc_infer``: see ``cli``."""

import sys

from .cli import main

sys.exit(main())
