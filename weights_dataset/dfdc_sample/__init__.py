"""DFDC-format sample data: synthetic REAL/FAKE face videos with ground-truth face boxes.

For development and tests only (never packed into the Kaggle submission). Entry points:
:func:`generate_dataset`, :func:`write_video` and :func:`self_blend`; CLI ``python -m dfdc_sample``.
"""

from dfdc_sample.blend import self_blend
from dfdc_sample.generate import VideoWriter, generate_dataset, summarize, write_video

__all__ = ["VideoWriter", "generate_dataset", "self_blend", "summarize", "write_video"]
