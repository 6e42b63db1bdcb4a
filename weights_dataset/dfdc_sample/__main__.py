"""``python -m dfdc_sample OUT_DIR ...``: see :func:`dfdc_sample.generate.main`."""

import sys

from dfdc_sample.generate import main

sys.exit(main())
