"""DFDC-format sample data: REAL and FAKE face videos of several identities, with ground-truth face boxes.

For development and tests only (never packed into the Kaggle submission). Entry points:
:func:`generate_dataset` and :func:`write_video`; CLI ``python -m dfdc_sample``. The fake methods
live in :mod:`dfdc_fakes`, the face photos in :mod:`dfdc_sample.photos` and :mod:`dfdc_sample.faces`.
"""

from dfdc_sample.generate import VideoWriter, generate_dataset, summarize, write_video

__all__ = ["VideoWriter", "generate_dataset", "summarize", "write_video"]
