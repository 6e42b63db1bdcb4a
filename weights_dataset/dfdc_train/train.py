"""Training: an EfficientNet on extracted face crops, scored every epoch the way the kernel scores.

    python -m dfdc_train.train CROPS OUT [--arch tf_efficientnet_b0] [--input-size 224] [--epochs 10]
        [--sampler pairs|all-fakes|synthetic] [--test-identities A,B] [--test-methods M] [--resume OUT/last.pt] [any TrainConfig flag]
    torchrun --nproc_per_node 2 -m dfdc_train.train CROPS OUT ...      (DistributedDataParallel)

CROPS is an extraction output (``python -m dfdc_train.extract``) or a folder of ready crops in the
layout of Kaggle's "deepfake-faces" set (``faces_folder``: split by original through pseudo-chunks). Each epoch shows every original
of the training chunks once next to a fake of it, then scores the validation chunks per crop and
per video (clipped logloss, AUC). OUT receives ``last.pt`` and ``best.pt`` (lowest validation
logloss per video; the packaging format, ready for ``build_submission.py``), their
``.resume.pt`` files, ``history.csv`` and ``curves.png``. After the last epoch ``best.pt`` gets a
temperature fitted on the validation split (``calibration``), and the test split (or, without one,
the validation split) is scored per fake method and for seen vs unseen identities:
``evaluation.csv`` and ``evaluation.png``. With several processes, OUT must be on a filesystem they
all see (every process reads ``best.pt`` at the end, and the checkpoint on resume).

Same seed, same data and same ``--threads``: bit-identical weights and figures, whatever the load.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dfdc_fakes import METHODS
from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.config import add_dataclass_arguments, dataclass_from_args
from dfdc_infer.manifest import sha256_file
from dfdc_infer.models import ModelSpec, create_network, preprocess, read_checkpoint
from dfdc_infer.progress import ProgressLine, format_duration

from . import distributed
from .calibration import probabilities
from .checkpoints import load_training_state, save_model, save_training_state
from .config import TrainConfig
from .crop_index import read_index, read_settings
from .data import TrainBatches, single_threaded_opencv, torch_threads
from .distillation import read_teacher_scores, with_teacher_targets
from .distributed import Distributed
from .evaluation import evaluate, predict_logits, slice_table, write_slice_table
from .faces_folder import is_faces_folder, read_faces_folder
from .history import format_table, write_history
from .identities import read_persons
from .layout import DataError
from .losses import loss_for_epoch
from .mask_loss import MaskHead, WithMaskHead, mask_loss
from .metrics import clipped_logloss, score
from .pretrained import load_start, start_network
from .sampling import Pairing, batches_per_rank, build_pairing, epoch_batches, rank_share
from .schedule import build_optimizer, build_scheduler, set_trainable
from .splits import Split, column, split_by_chunk
from .unchanged_fakes import drop_unchanged_fakes

log = logging.getLogger(__name__)

BEST, LAST = "best.pt", "last.pt"


def selection_metric(config: TrainConfig) -> str:
    """What picks ``best.pt``: the validation logloss per video, after temperature scaling when the run calibrates
    (the kernel applies the temperature, so a sharp but well-ranking epoch is not passed over for a timid one). A
    ``balanced_loss`` run is picked by the balanced logloss, the figure it was trained for: on DFDC's 83% fakes the plain
    one passed over its best-ranking epochs (measured: epoch 3, AUC 0.74, kept over epoch 5, AUC 0.81)."""
    name = "val_video_balanced_logloss" if config.balanced_loss else "val_video_logloss"
    return f"{name}_calibrated" if config.calibrate else name


def best_epoch(history: list[dict[str, Any]], config: TrainConfig) -> tuple[int, str]:
    """The position in ``history`` of the epoch ``selection_metric`` picks, and that metric (a history written before a
    balanced run's calibrated balanced logloss was recorded is judged as it was then, without ``balanced_loss``)."""
    metric = selection_metric(config)
    if any(metric not in row for row in history):
        metric = selection_metric(replace(config, balanced_loss=False))
    return min(range(len(history)), key=lambda position: history[position][metric]), metric


@dataclass(frozen=True)
class TrainingData:
    """The splits, the training pairs, the on-the-fly fake methods, and the extraction settings the crops were made with."""

    crops_dir: Path
    splits: dict[str, Split]
    pairing: Pairing
    settings: dict[str, Any]
    methods: tuple[str, ...]
    """On-the-fly fake methods (none when the sampler never makes fakes)."""
    teacher_sha256: str = ""
    """The ``--teacher-scores`` file's sha256 (empty without one): a resumed run must train on the same soft targets."""

    @property
    def seen_identities(self) -> set[str]:
        """Identities the model trains on (their faces are not a test of generalisation)."""
        return set(column(self.splits["train"].crops, "identity")) - {""}

    def seen_methods(self, sampler: str) -> set[str]:
        """Fake methods the model trains on: its fake videos' (unless synthetic) and the on-the-fly ones."""
        crops = self.splits["train"].crops
        videos = set() if sampler == "synthetic" else set(column(crops, "method")[crops["label"] == "FAKE"])
        return (videos | set(self.methods)) - {""}


def synthetic_methods(config: TrainConfig) -> tuple[str, ...]:
    """The on-the-fly fake methods: as asked, or every registered one not held out; none if unused."""
    if config.sampler != "synthetic" and config.synthetic_prob == 0:
        return ()
    held_out = set(config.names("val_methods")) | set(config.names("test_methods"))
    chosen = config.names("synthetic_methods") or [name for name in METHODS.names() if name not in held_out]
    for name in chosen:
        METHODS.check(name)
    clash = sorted(set(chosen) & held_out)
    if clash:
        raise DataError(f"--synthetic-methods {', '.join(clash)} would train on methods held out by --val-methods/--test-methods")
    if not chosen:
        raise DataError("every fake method is held out: nothing is left to make on-the-fly fakes with")
    return tuple(chosen)


def read_crops(crops_dir: Path, layout: str = "auto", persons: str = "", group: str = "original"
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``(crops, videos, settings)`` of an extraction output or a deepfake-faces folder (``layout`` auto: whichever it is;
    ``persons`` and ``group``: see ``faces_folder.read_faces_folder``)."""
    if layout == "deepfake-faces" or (layout == "auto" and is_faces_folder(crops_dir)):
        folder = read_faces_folder(crops_dir, read_persons(Path(persons)) if persons else None, group)
        return folder.crops, folder.videos, folder.settings
    if persons or group != "original":
        raise DataError("--persons and --group person are for a deepfake-faces folder; an extraction has its own identities")
    crops, videos = read_index(crops_dir)
    return crops, videos, read_settings(crops_dir)


def load_data(crops_dir: Path, config: TrainConfig) -> TrainingData:
    """Read the crops, split them (chunks, identities, methods) and pair the training originals with their fakes."""
    crops, videos, settings = read_crops(crops_dir, config.layout, config.persons, config.group)
    splits = split_by_chunk(crops, videos, config)
    if config.min_fake_change > 0:
        splits["train"] = drop_unchanged_fakes(splits["train"], Path(crops_dir), config.min_fake_change, max(config.workers, 1))
    teacher_sha256 = ""
    if config.teacher_scores:
        source = Path(config.teacher_scores)
        splits["train"] = with_teacher_targets(splits["train"], read_teacher_scores(source), config.teacher_weight, source)
        teacher_sha256 = sha256_file(source)
    pairing = build_pairing(splits["train"].crops)
    methods = synthetic_methods(config)
    log.info("train pairing (%s sampler): %s%s", config.sampler, pairing.describe(config.sampler),
             f"; on-the-fly fakes: {', '.join(methods)}" if methods else "")
    if not pairing.usable(config.sampler):
        raise DataError(f"no original in the train split has a fake to pair with ({pairing.describe(config.sampler)}); "
                        "use --sampler synthetic to train from real videos alone")
    return TrainingData(Path(crops_dir), splits, pairing, settings, methods, teacher_sha256)


def build_model(config: TrainConfig) -> tuple[nn.Module, ModelSpec]:
    """The timm network training starts from (seeded; the body random or ``config.pretrained``'s, the head zero) and its
    spec: input size and normalisation (the pretrained source's own, else the architecture's); the spec's meta records
    the source and its weight file's sha256."""
    torch.manual_seed(config.seed)
    try:
        model = create_network(config.network)
    except RuntimeError as error:  # timm: "Unknown model (...)"
        raise ValueError(f"unknown timm architecture {config.network!r} (e.g. tf_efficientnet_b0 ... tf_efficientnet_b7)") from error
    start = load_start(config.pretrained, config.network, config.cache_dir)
    if start is not None:
        start_network(model, start)
    if config.stem == "highpass":
        init_highpass_stem(model)
    classifier = model.get_classifier()
    nn.init.zeros_(classifier.weight)  # start at P(fake) = 0.5 for every crop (logloss 0.693), not at
    nn.init.zeros_(classifier.bias)  # the random head's confident guesses, which cost the first epochs
    defaults = model.pretrained_cfg
    mean, std = (start.mean, start.std) if start is not None else (defaults["mean"], defaults["std"])
    spec = ModelSpec(arch=config.network, input_size=config.input_size or int(defaults["input_size"][-1]),
                     mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                     meta={"pretrained": start.provenance() if start is not None else {"source": "none"}})
    if start is not None:
        log.info("starting from %s's ImageNet weights for %s (sha256 %s)", start.source, start.arch, start.sha256[:12])
    else:
        log.warning("starting %s from random weights (--pretrained none): every DFDC solution fine-tunes ImageNet weights; "
                    "pass --pretrained timm (online) or efficientnet-lite0/1/2 (offline)", config.network)
    return model, spec


HIGHPASS_KERNELS = torch.tensor([
    [[0, 0, 0], [1, -2, 1], [0, 0, 0]],  # second difference across columns
    [[0, 1, 0], [0, -2, 0], [0, 1, 0]],  # ... across rows
    [[0, 1, 0], [1, -4, 1], [0, 1, 0]],  # Laplacian
    [[-1, 2, -1], [2, -4, 2], [-1, 2, -1]],  # SRM's 3x3 "KV" residual
], dtype=torch.float32)
"""Fixed high-pass residual filters (SRM-style, as steganalysis and the DFDC 1st place tried): blending seams, resampling and
re-compression live in the high frequencies, a face's identity in the low ones."""


def init_highpass_stem(model: nn.Module) -> None:
    """Start the network's first convolution (the one reading the 3 colour channels) with high-pass filters in half its
    output channels: ``HIGHPASS_KERNELS`` on the luminance and on each colour channel, in turn. They stay trainable.

    The architecture does not change, so the checkpoint loads in the kernel as any other; only the starting point does.
    """
    conv = next((module for module in model.modules() if isinstance(module, nn.Conv2d) and module.in_channels == 3), None)
    if conv is None or conv.kernel_size[0] < 3 or conv.groups != 1:
        raise ValueError(f"--stem highpass needs a first 3-channel convolution of at least 3x3; {type(model).__name__} has none")
    size, pad = conv.kernel_size[0], (conv.kernel_size[0] - 3) // 2
    inputs = [torch.full((3,), 1 / 3), *torch.eye(3)]  # luminance, then red, green, blue
    with torch.no_grad():
        for channel in range(conv.out_channels // 2):
            kernel = HIGHPASS_KERNELS[channel % len(HIGHPASS_KERNELS)]
            kernel = kernel / kernel.abs().sum()
            weight = torch.zeros(3, size, size)
            weight[:, pad:pad + 3, pad:pad + 3] = inputs[(channel // len(HIGHPASS_KERNELS)) % len(inputs)][:, None, None] * kernel
            conv.weight[channel] = weight * 4


def train(crops_dir: Path, out_dir: Path, config: TrainConfig, resume: Path | None = None, stop_after: int | None = None,
          context: Distributed = Distributed()) -> list[dict[str, Any]]:
    """Train for ``config.epochs`` (continuing after ``resume``'s epoch); returns the epoch table.

    ``stop_after`` pauses once that many epochs are done (a session with a time limit, e.g. a
    Kaggle notebook); ``resume`` from its ``last.pt`` continues exactly where it paused.
    """
    data = load_data(crops_dir, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = context.device(config.device)
    model, spec = build_model(config)
    model.to(device, memory_format=torch.channels_last if config.channels_last else torch.preserve_format)
    head = MaskHead(model.num_features).to(device) if config.mask_loss_weight else None  # training only, never in best.pt
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    board = TensorBoardLog(config.tensorboard) if config.tensorboard and context.is_main else None
    batches = math.ceil(len(data.pairing.usable(config.sampler)) / config.originals_per_batch)
    total_steps = batches_per_rank(batches, context.world_size) * config.epochs
    optimizer = build_optimizer(model, config, head)
    scheduler = build_scheduler(optimizer, config, total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    history: list[dict[str, Any]] = []
    if resume is not None:
        history = restore(resume, model, spec, optimizer, scheduler, scaler, total_steps, average, head, data.teacher_sha256)
    log.info("training %s@%d on %s x%d: %d epochs of %d batches per process (%d originals per batch), %d steps in all",
             spec.arch, spec.input_size, device, context.world_size, config.epochs, total_steps // config.epochs,
             config.originals_per_batch, total_steps)
    with single_threaded_opencv(), torch_threads(config.threads):
        first = len(history)
        for epoch in range(first, min(config.epochs, stop_after or config.epochs)):
            if stopped_early(history, config):
                break
            started = time.monotonic()
            row = train_epoch(model, spec, data, config, epoch, optimizer, scheduler, scaler, device, context, average, head)
            scored = average.model if average else model
            metrics = evaluate(scored, data.splits["val"], data.crops_dir, spec, config, device, context)
            row.update({f"val_{name}": value for name, value in metrics.items() if name not in ("crops", "videos")})
            row["seconds"] = round(time.monotonic() - started, 1)
            history.append(row)
            if context.is_main:
                save_epoch(out_dir, model, spec, config, data, history, optimizer, scheduler, scaler, total_steps, average, head)
                print(format_table(history[-1:], header=epoch == first), flush=True)
                if board:
                    board.write(row)
            context.barrier()
        if board:
            board.close()
        if len(history) == config.epochs or stopped_early(history, config):
            if len(history) < config.epochs:
                log.info("early stopping after epoch %d: %s has not improved for %d epochs", len(history), selection_metric(config),
                         config.early_stopping)
            finish(out_dir, average.model if average else model, data, config, device, context)
    return history


def train_epoch(model: nn.Module, spec: ModelSpec, data: TrainingData, config: TrainConfig, epoch: int,
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                device: torch.device, context: Distributed, average: "WeightAverage | None" = None,
                head: MaskHead | None = None) -> dict[str, Any]:
    """One pass over the epoch's batches (this process's share); returns the epoch's training columns. With a mask
    ``head`` its loss on the batch's mask targets (``mask_loss``) adds to the label's."""
    torch.manual_seed(config.seed + epoch)  # dropout draws depend on the epoch only: resuming changes nothing
    model.train()
    trainable = set_trainable(model, epoch, config.unfreeze_blocks_per_epoch, config.freeze_epochs)
    # Rebuilt every epoch: DDP syncs the gradients of the parameters trainable when it is built.
    trained = WithMaskHead(model, head) if head is not None else model
    network = DistributedDataParallel(trained, device_ids=[device] if device.type == "cuda" else None) if context.active else trained
    loss_name, loss_fn = loss_for_epoch(config, epoch)
    plan = rank_share(epoch_batches(data.pairing, config.sampler, config.originals_per_batch, config.seed, epoch, data.methods,
                                    config.synthetic_prob, config.fakes_per_original), context.rank, context.world_size)
    crop_margin = float(data.settings["crop_margin"])
    loader = DataLoader(TrainBatches(plan, data.splits["train"].crops, data.crops_dir, config, crop_margin, spec.input_size),
                        batch_size=None, num_workers=config.workers, pin_memory=device.type == "cuda")
    log.info("epoch %d/%d: %s loss, training %s", epoch + 1, config.epochs, loss_name, trainable)
    progress = ProgressLine(len(plan), unit="steps", every_seconds=30)
    losses, mask_losses, targets, probabilities = [], [], [], []
    fakes_with_target = 0
    for images, labels, *masks in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if config.channels_last:  # otherwise as the loader made them (their strides decide the rounding, so older runs stay exact)
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
            output = network(preprocess(images, spec))
        logits, cells = output if head is not None else (output, None)
        logits = logits.view(-1)
        loss = loss_fn(logits.float(), labels)
        if cells is not None:
            fakes_with_target += int(((masks[0][:, 0, 0, 0] >= 0) & (labels.cpu() >= 0.5)).sum())
            where = mask_loss(cells, masks[0].to(device, non_blocking=True))
            mask_losses.append(where.item())
            loss = loss + config.mask_loss_weight * where
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(trained.parameters(), config.grad_clip)  # the mask head's too
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if average:
            average.update(model)
        losses.append(loss.item())
        targets.append(labels.cpu().numpy())
        probabilities.append(torch.sigmoid(logits.detach().float()).cpu().numpy())
        progress.advance()
    train_logloss = clipped_logloss(np.concatenate(targets), np.concatenate(probabilities), config.clip_min, config.clip_max)
    rates = scheduler.get_last_lr()  # body, head
    row = {"epoch": epoch + 1, "loss": loss_name, "lr": rates[-1], "lr_body": rates[0], "train_loss": context.mean(float(np.mean(losses))),
           "train_logloss": context.mean(train_logloss)}
    if mask_losses:  # how many fakes had a mask target says whether the layout's pairs are aligned at all
        fakes = int((np.concatenate(targets) >= 0.5).sum())
        row["train_mask_loss"] = context.mean(float(np.mean(mask_losses)))
        row["train_mask_fakes_with_target"] = context.mean(fakes_with_target / max(fakes, 1))
        log.info("mask loss: %d of %d fakes had a target (pixel-aligned with their real); the rest trained on the label alone",
                 fakes_with_target, fakes)
    return row


def save_epoch(out_dir: Path, model: nn.Module, spec: ModelSpec, config: TrainConfig, data: TrainingData,
               history: list[dict[str, Any]], optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
               scaler: torch.amp.GradScaler, total_steps: int, average: "WeightAverage | None" = None,
               head: MaskHead | None = None) -> None:
    """``last.pt`` (+ resume state) every epoch, ``best.pt`` when validation improved, the table and plot.

    With a weight average the checkpoints hold the average (what was validated); the trained weights go in the resume state.
    """
    state = {"epoch": len(history) - 1, "total_steps": total_steps, "history": history, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}
    if head is not None:
        state["mask_head"] = head.state_dict()
    if average:
        state["trained_weights"] = model.state_dict()
        model = average.model
    save_training_state(out_dir / LAST, model, with_meta(spec, config, data, history), state)
    best, metric = best_epoch(history, config)
    if best == len(history) - 1:
        save_training_state(out_dir / BEST, model, with_meta(spec, config, data, history), state)
        log.info("epoch %d is the best so far (%s %.4f): wrote %s", history[best]["epoch"], metric, history[best][metric], out_dir / BEST)
    write_history(history, out_dir)


def with_meta(spec: ModelSpec, config: TrainConfig, data: TrainingData, history: list[dict[str, Any]]) -> ModelSpec:
    """``spec`` carrying what the checkpoint's last epoch scored and everything that made it."""
    metrics = {name: value for name, value in history[-1].items() if name.startswith(("val_", "train_"))}
    meta = {**spec.meta, "trained": True, "epoch": history[-1]["epoch"], "metrics": metrics,
            "train_config": config.to_dict(), "extraction": data.settings, "history": history}
    if data.teacher_sha256:
        meta["teacher_scores_sha256"] = data.teacher_sha256
    if "preset" in data.settings:  # the inference preset that cuts faces as these crops were cut (``predict`` uses it)
        meta["preset"] = data.settings["preset"]
    return ModelSpec(spec.arch, spec.input_size, spec.mean, spec.std, meta)


def restore(path: Path, model: nn.Module, spec: ModelSpec, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, total_steps: int,
            average: "WeightAverage | None" = None, head: MaskHead | None = None, teacher_sha256: str = ""
            ) -> list[dict[str, Any]]:
    """Load a run's weights and optimiser/scheduler state (and its mask head's); returns its history (epochs done).

    A run distilled from a teacher (``teacher_scores_sha256`` in its meta) resumes only on the same scores file's bytes:
    targets that change halfway would train a recipe that no flag records."""
    saved, weights, state = load_training_state(path)
    trained_on = saved.meta.get("teacher_scores_sha256", "")
    if trained_on and trained_on != teacher_sha256:
        now = f"a file with sha256 {teacher_sha256[:12]}" if teacher_sha256 else "none"
        raise ValueError(f"{path} was trained on --teacher-scores with sha256 {trained_on[:12]}, this run has {now}: resume "
                         "with the same scores file")
    if teacher_sha256 and not saved.meta.get("train_config", {}).get("teacher_scores"):
        raise ValueError(f"{path} was trained without --teacher-scores: resume with the same settings")
    if (saved.arch, saved.input_size) != (spec.arch, spec.input_size):
        raise ValueError(f"{path} is {saved.arch}@{saved.input_size}, this run {spec.arch}@{spec.input_size}: resume with the same model")
    if state["total_steps"] != total_steps:
        raise ValueError(f"{path} was trained on a schedule of {state['total_steps']} steps, this run has {total_steps}: resume with "
                         "the same --epochs, --originals-per-batch, crops and number of processes")
    if average:
        average.model.load_state_dict(weights)
        weights = state["trained_weights"]
    model.load_state_dict(weights)
    if (head is not None) != ("mask_head" in state):  # a head dropped or added halfway would train a different recipe
        trained = "with" if "mask_head" in state else "without"
        raise ValueError(f"{path} was trained {trained} --mask-loss-weight: resume with the same settings")
    if head is not None:
        head.load_state_dict(state["mask_head"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    log.info("resumed from %s after epoch %d", path, state["epoch"] + 1)
    return list(state["history"])


def stopped_early(history: list[dict[str, Any]], config: TrainConfig) -> bool:
    """Whether ``config.early_stopping`` epochs have passed since the best one (resuming such a run trains no more)."""
    if not config.early_stopping or not history:
        return False
    return len(history) - 1 - best_epoch(history, config)[0] >= config.early_stopping


class WeightAverage:
    """An exponential moving average of a network's weights (``decay`` per optimiser step; BatchNorm statistics copied),
    which generalises better than the last step's weights, the 1st place's and timm's ``ModelEma``."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for mine, theirs in zip(self.model.state_dict().values(), model.state_dict().values()):
            if mine.is_floating_point():
                mine.lerp_(theirs, 1.0 - self.decay)
            else:
                mine.copy_(theirs)


class TensorBoardLog:
    """Every epoch's numbers (losses, figures, learning rates) as TensorBoard scalars, by epoch, as the 1st place logged."""

    def __init__(self, folder: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # the tensorboard package is a training-only dependency
            raise ValueError(f"--tensorboard needs the tensorboard package (pip install tensorboard): {error}") from None
        self.writer = SummaryWriter(folder)

    def write(self, row: dict[str, Any]) -> None:
        for name, value in row.items():
            if isinstance(value, (int, float)) and name != "epoch":
                self.writer.add_scalar(name.replace("_", "/", 1), value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def finish(out_dir: Path, model: nn.Module, data: TrainingData, config: TrainConfig, device: torch.device,
           context: Distributed) -> None:
    """With ``best.pt``: take the temperature its epoch fitted on validation, score the test split, write the slice table.

    ``best.pt``'s meta gets ``temperature``, the test figures, the identities and methods it was
    trained on (the dry run generates videos of the others), and logloss before and after calibration.
    """
    spec, weights = read_checkpoint(out_dir / BEST)
    model.load_state_dict(weights)
    val = spec.meta["metrics"]  # its epoch's validation (``evaluate``) already fitted the temperature on these weights
    temperature = val.get("val_temperature", 1.0)
    figures = {"val_video_logloss_uncalibrated": val["val_video_logloss"],
               "val_video_logloss_calibrated": val.get("val_video_logloss_calibrated", val["val_video_logloss"])}
    scored = data.splits.get("test", data.splits["val"])
    logits = predict_logits(model, scored.crops["path"].tolist(), data.crops_dir, spec, config, device, context)
    seen_identities, seen_methods = data.seen_identities, data.seen_methods(config.sampler)
    table = slice_table(scored, logits, temperature, seen_identities, seen_methods, config)
    if "test" in data.splits:
        labels = (scored.crops["label"] == "FAKE").to_numpy(dtype=np.float64)
        metrics = score(scored.crops["video"].to_numpy(), labels, probabilities(logits, temperature), config.clip_min, config.clip_max)
        figures.update({f"test_{name}": value for name, value in metrics.items()})
        figures["test_video_logloss_uncalibrated"] = float(table.loc[table["slice"] == "all", "logloss_uncalibrated"].iloc[0])
    log.info("temperature %.3g (fitted on validation): validation logloss per video %.4f -> %.4f", temperature,
             figures["val_video_logloss_uncalibrated"], figures["val_video_logloss_calibrated"])
    if context.is_main:
        write_slice_table(table, out_dir, f"{scored.name} split, {spec.arch}@{spec.input_size}, epoch {spec.meta['epoch']}, T={temperature:.3g}")
        print(f"\n{scored.name} split by slice (per video; logloss at T={temperature:.3g}, AUC; before calibration; confident rule):")
        print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
        meta = {**spec.meta, "temperature": temperature, "metrics": {**spec.meta["metrics"], **figures},
                "identities_seen": sorted(seen_identities), "methods_seen": sorted(seen_methods)}
        save_model(out_dir / BEST, model, ModelSpec(spec.arch, spec.input_size, spec.mean, spec.std, meta))
    context.barrier()


def resumed_config(path: Path | None) -> TrainConfig | None:
    """The config a checkpoint was trained with (flags given with ``--resume`` override it)."""
    if path is None:
        return None
    spec, _ = read_checkpoint(path)
    if "train_config" not in spec.meta:
        raise ValueError(f"{path} holds no training config: resume from a last.pt or best.pt written by dfdc_train.train")
    return TrainConfig.from_dict(spec.meta["train_config"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.train", description=__doc__.splitlines()[0])
    parser.add_argument("crops", type=Path, help="extraction output folder (index.csv, videos.csv, crops/)")
    parser.add_argument("out", type=Path, help="where checkpoints, history.csv and curves.png go")
    parser.add_argument("--resume", type=Path, default=None, help="continue the run of this last.pt/best.pt (its settings are the default)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                        help="pause when this many epochs are done (continue later with --resume OUT/last.pt)")
    add_dataclass_arguments(parser, TrainConfig, "training settings")
    args = parser.parse_args(argv)
    context = Distributed()
    try:
        config = dataclass_from_args(TrainConfig, args, base=resumed_config(args.resume))
        context = distributed.start(config.device)
        setup_logging(logging.INFO if context.is_main else logging.WARNING, f"[rank {context.rank}] " if context.active else "")
        started = time.monotonic()
        history = train(args.crops, args.out, config, args.resume, args.stop_after, context)
    except USER_ERRORS as error:
        return fail(error)
    finally:
        distributed.stop(context)
    if context.is_main and history:
        print(format_table(history))
        best = history[best_epoch(history, config)[0]]
        calibrated = f", {best['val_video_logloss_calibrated']:.4f} at T={best['val_temperature']:.3g}" if config.calibrate else ""
        print(f"best epoch {best['epoch']}: validation logloss {best['val_video_logloss']:.4f} per video{calibrated} "
              f"({best['val_crop_logloss']:.4f} per crop), AUC {best['val_video_auc']:.4f} per video; "
              f"{args.out / BEST} after {format_duration(time.monotonic() - started)}")
        if len(history) < config.epochs and not stopped_early(history, config):
            print(f"paused after epoch {len(history)} of {config.epochs}: continue with --resume {args.out / LAST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
