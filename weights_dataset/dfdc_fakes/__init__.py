"""Fake-making methods: how a REAL face becomes a FAKE one, by name (development only, never packed).

One registry, ``METHODS``, serves both the sample generator (``dfdc_sample``, FAKE videos made from
REAL ones frame by frame) and training's on-the-fly fakes (``dfdc_train``, fakes made from REAL face
crops). Each method is a pure function ``method(image, box, rng, donor) -> image`` (see
:mod:`dfdc_fakes.methods`); having several, each leaving different traces, is what lets a model learn
"manipulated" instead of one method's signature, and lets an evaluation hold a method out.
``dfdc_infer`` never imports this package.
"""

from dfdc_fakes.face_masks import Box, landmarks_from_box
from dfdc_fakes.methods import DONOR_METHODS, METHODS, Face, make_fake

__all__ = ["DONOR_METHODS", "METHODS", "Box", "Face", "landmarks_from_box", "make_fake"]
