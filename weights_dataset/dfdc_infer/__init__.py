"""Offline inference for video deepfake detection (DFDC-style Kaggle code competitions).

This package is copied as-is into the Kaggle dataset by ``build_submission.py``; it imports only
torch, timm, decord, opencv, numpy, pandas and the standard library, never training code or tests.

Stages, one module each: ``video_reading`` -> ``face_detection`` -> ``cropping`` -> ``models`` ->
``pipeline`` (scheduling) -> ``submission``. ``config.InferenceConfig`` carries every setting.
"""

__version__ = "0.1.0"
