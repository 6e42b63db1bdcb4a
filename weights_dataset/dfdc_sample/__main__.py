"""``python -m dfdc_sample OUT_DIR ...``: see :func:`dfdc_sample.generate.main`."""

from dfdc_sample.generate import main

main()
