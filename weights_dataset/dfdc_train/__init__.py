"""Face extraction and training for the DFDC detector (development only, never packed for Kaggle).

Stages, one module each: ``layout`` (the DFDC training folders) -> ``extract`` (faces to image
files, ``python -m dfdc_train.extract``) with ``crop_index`` (the done-lists and index tables), or
``faces_folder`` (Kaggle's deepfake-faces crops) with ``identities`` (its originals clustered into people) ->
``splits`` (train/validation/test by chunk, identity and fake method) -> ``sampling`` (real/fake
groups per batch; on-the-fly fakes from ``dfdc_fakes``) -> ``augment`` and ``data`` (images to
tensors) -> ``train`` (the loop, ``python -m dfdc_train.train``) with ``losses`` and ``mask_loss``, ``schedule``,
``evaluation`` (the metric, and the table per method and seen/unseen identity), ``calibration``
(the temperature the kernel applies), ``metrics``, ``history``, ``checkpoints`` and ``distributed``. ``config`` holds the two frozen settings objects, ``ExtractConfig`` and
``TrainConfig``.

Preprocessing is never re-implemented here: video reading, face detection, cropping, the network,
input normalisation and per-video aggregation are the very functions ``dfdc_infer`` runs on Kaggle,
so training and inference cannot drift apart. ``dfdc_infer`` never imports this package.
"""
