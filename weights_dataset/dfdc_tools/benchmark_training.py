"""Measurements behind the README's training figures: extraction at DFDC scale, the loader, the training step (development only).

    python -m dfdc_tools.benchmark_training masks   [--work runs/bench-masks]     absdiff vs SSIM masks against the true manipulated pixels
    python -m dfdc_tools.benchmark_training extract [--work runs/bench-extract]   extraction per stage, with and without box reuse; disk
    python -m dfdc_tools.benchmark_training loader  CROPS... [--workers 0,1,2]    training images/s of the data loader at input 380
    python -m dfdc_tools.benchmark_training step    [--models efficientnet_lite0@96,...]  training crops/s and peak memory of the network step
    python -m dfdc_tools.benchmark_training loop    CROPS [--model efficientnet_lite0@128]  our training loop beside a bare timm loop, crops/s

Everything runs on generated data (``dfdc_sample``, ``dfdc_fakes``), so the figures can be
reproduced anywhere; each prints its results and writes them as JSON into ``--work``. Timings are
wall clock: on a shared machine, say the load next to them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from dfdc_fakes import METHODS, make_fake
from dfdc_infer.console import setup_logging
from dfdc_infer.cropping import crop_face, select_faces
from dfdc_infer.video_reading import FrameSampling, create_reader
from dfdc_sample.generate import generate_dataset, write_video
from dfdc_train.augment import recompress
from dfdc_train.config import ExtractConfig
from dfdc_train.crop_index import read_index
from dfdc_train.difference_masks import MASK_METHODS, blurred_absdiff
from dfdc_train.extract import STAGES, extract

log = logging.getLogger("dfdc_tools.benchmark_training")


# ---- masks -------------------------------------------------------------------------------------------

CHANGED = 4
"""A truly manipulated pixel changed by at least this many levels; those changed by 1..CHANGED-1
are left out of the scores (neither clearly changed nor unchanged)."""


def mask_pairs(work: Path, videos: int, size: tuple[int, int], frames: int, crop_size: int, seed: int
               ) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per fake method, ``(original crop, fake crop, true change)`` triples as extraction sees them.

    Every generated REAL video is faked with every method of ``dfdc_fakes`` (a fixed manipulation
    per video, as the generator's fakes; a face swap takes the next video's face); then the original
    and the fake frames are H.264-encoded separately (DFDC encoded each fake on its own), decoded,
    cut with the same box and stored as JPEG q95 (the default crop format). The true change is the
    largest per-channel difference of the raw (never encoded) crops.
    """
    data = generate_dataset(work / "data", layout="test", videos=videos, width=size[0], height=size[1], frames=frames, seed=seed)
    faces = json.loads((data / "faces.json").read_text())
    labels = json.loads((data / "metadata.json").read_text())
    reader = create_reader("decord")
    every = FrameSampling(frame_step=1)
    reals = [(name, boxes) for name, boxes in sorted(faces.items()) if labels[name]["label"] == "REAL" and all(boxes)]
    decoded = {name: reader.read(data / "test_videos" / name, every).frames for name, _ in reals}
    triples: dict[str, list] = {method: [] for method in METHODS.names()}
    for number, (name, boxes) in enumerate(reals):
        raw = decoded[name]
        donor_name, donor_boxes = reals[(number + 1) % len(reals)]
        donor = (decoded[donor_name][0], tuple(largest(donor_boxes[0])[:4]))
        original = reader.read(write_video(work / f"original-{name}", raw), every).frames
        for method in METHODS.names():
            fake = np.stack([make_fake(method, frame, tuple(largest(frame_boxes)[:4]), np.random.default_rng([seed, number]), donor)
                             for frame, frame_boxes in zip(raw, boxes)])
            encoded = reader.read(write_video(work / f"{method}-{name}", fake), every).frames
            for index in range(0, len(raw), 10):
                box = largest(boxes[index])
                cut = [crop_face(video[index], box, crop_size) for video in (raw, fake, original, encoded)]
                truth = np.abs(cut[1].astype(np.int16) - cut[0]).max(axis=2)
                triples[method].append((recompress(cut[2], 95), recompress(cut[3], 95), truth))  # as extraction stores them
    return triples


def largest(boxes: list[list[int]]) -> np.ndarray:
    """The largest of a frame's true face boxes as a detection row ``[x1, y1, x2, y2, 1]``."""
    return select_faces(np.array([[*box, 1.0] for box in boxes], dtype=np.float32))[0]


def separation(masks: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    """Pixel AUC (changed by >= ``CHANGED`` levels vs unchanged) and the best IoU over thresholds."""
    values = np.concatenate([mask.ravel() for mask in masks]).astype(np.int64)
    truth = np.concatenate([t.ravel() for t in truths])
    keep = (truth == 0) | (truth >= CHANGED)
    values, positive = values[keep], truth[keep] >= CHANGED
    pos = np.bincount(values[positive], minlength=256)
    neg = np.bincount(values[~positive], minlength=256)
    # AUC from the value histograms: P(mask of a changed pixel > mask of an unchanged one), ties half.
    below = np.concatenate([[0], np.cumsum(neg)[:-1]])
    auc = float((pos * (below + neg / 2)).sum() / (pos.sum() * neg.sum()))
    # IoU of (mask >= t) with the changed pixels, for every t.
    hits = np.cumsum(pos[::-1])[::-1]
    false = np.cumsum(neg[::-1])[::-1]
    iou = hits / (pos.sum() + false)
    best = int(np.argmax(iou[1:])) + 1
    return {"pixel_auc": round(auc, 4), "best_iou": round(float(iou[best]), 4), "at_threshold": best,
            "changed_share": round(float(positive.mean()), 3)}


def benchmark_masks(work: Path, videos: int, size: tuple[int, int], frames: int, crop_size: int, seed: int) -> dict[str, dict]:
    """Each mask method's separation per fake method and over all of them, and its time per crop."""
    pairs = mask_pairs(work, videos, size, frames, crop_size, seed)
    pairs["all methods"] = [triple for triples in pairs.values() for triple in triples]
    methods = {name: MASK_METHODS.get(name) for name in MASK_METHODS.names()}
    methods.update({f"absdiff sigma {sigma}": (lambda a, b, s=sigma: blurred_absdiff(a, b, s)) for sigma in (0, 3.0, 5.0)})
    results: dict[str, dict] = {}
    for name, method in methods.items():
        for fakes, triples in pairs.items():
            started = time.perf_counter()
            masks = [method(original, fake) for original, fake, _ in triples]
            results[f"{name} | {fakes}"] = {**separation(masks, [truth for _, _, truth in triples]), "crops": len(triples),
                                            "ms_per_crop": round(1000 * (time.perf_counter() - started) / len(triples), 2)}
    return results


# ---- extraction throughput ----------------------------------------------------------------------

DFDC_ORIGINALS, DFDC_FAKES = 19_000, 100_000
"""DFDC's training set, roughly: ~19k original videos and ~100k fakes of them."""


def extraction_run(data: Path, out: Path, config: ExtractConfig) -> dict[str, float]:
    """One extraction into a fresh ``out``: seconds per stage and per video kind, counts, disk."""
    shutil.rmtree(out, ignore_errors=True)
    summary = extract(data, out, config)
    crops, _ = read_index(out)
    masks = crops[crops["mask"] != ""]
    return {"videos": summary.extracted, "detected": summary.detected, "fakes_reused": summary.reused,
            "videos_with_masks": int(masks["video"].nunique()), "crops": len(crops), "masks": len(masks),
            "wall_s": summary.seconds["wall"], **{f"{stage}_s": summary.seconds[stage] for stage in STAGES},
            "crop_bytes": sum((out / path).stat().st_size for path in crops["path"]),
            "mask_bytes": sum((out / path).stat().st_size for path in masks["mask"])}


def benchmark_extract(work: Path, videos: int, size: tuple[int, int], frames: int, rounds: int,
                      variants: list[tuple[int, str]]) -> dict[str, object]:
    """Extraction with and without box reuse, ``rounds`` times interleaved (medians), then once per
    storage ``variant`` (crop size, format) for the disk figures and the loader benchmark."""
    data = work / "data"
    if not data.is_dir():
        generate_dataset(data, layout="train", chunks=1, videos=videos, width=size[0], height=size[1], frames=frames, seed=0)
    runs: dict[str, list[dict[str, float]]] = {"reuse": [], "own": []}
    for round_number in range(rounds):
        for mode in runs:
            config = ExtractConfig(reuse_boxes=mode == "reuse")
            runs[mode].append(extraction_run(data, work / f"out-{mode}", config))
            log.info("round %d, %s: %s", round_number + 1, mode, runs[mode][-1])
    medians = {mode: {key: statistics.median(run[key] for run in done) for key in done[0]} for mode, done in runs.items()}
    result: dict[str, object] = {"load_before": os.getloadavg(), "runs": runs, "medians": medians}
    per = medians["reuse"]
    own = medians["own"]
    decode = per["decode_s"] / per["videos"]
    crop = per["crop_s"] / per["videos"]
    detect = own["detect_s"] / own["detected"]
    mask = per["mask_s"] / max(per["videos_with_masks"], 1)
    total = DFDC_ORIGINALS + DFDC_FAKES
    result["per_video_s"] = {"decode": decode, "detect (per detected video)": detect, "crop": crop, "mask (per fake)": mask}
    result["dfdc_stage_hours_this_cpu"] = {
        "with reuse": (total * (decode + crop) + DFDC_ORIGINALS * detect + DFDC_FAKES * mask) / 3600,
        "without reuse": total * (decode + crop + detect) / 3600}
    result["disk"] = {}
    for crop_size, image_format in variants:
        out = work / f"crops-{crop_size}-{image_format}"
        run = extraction_run(data, out, ExtractConfig(crop_size=crop_size, image_format=image_format))
        result["disk"][f"{crop_size} {image_format}"] = {
            "kb_per_crop": run["crop_bytes"] / run["crops"] / 1024, "kb_per_mask": run["mask_bytes"] / max(run["masks"], 1) / 1024,
            "crops_per_video": run["crops"] / run["videos"], "out": str(out)}
    result["load_after"] = os.getloadavg()
    return result


# ---- the training data loader ----------------------------------------------------------------------

def benchmark_loader(crops_dirs: list[Path], workers: list[int], recipes: list[str], input_size: int, batches: int,
                     originals_per_batch: int) -> dict[str, dict[str, float]]:
    """Training images/s of ``data.TrainBatches`` (pairs sampler) at ``input_size``, per crops folder,
    augmentation recipe and worker count; the first batch of each loader (worker start-up) is not timed."""
    from torch.utils.data import DataLoader

    from dfdc_train.config import TrainConfig
    from dfdc_train.data import TrainBatches, single_threaded_opencv
    from dfdc_train.sampling import build_pairing, epoch_batches

    results: dict[str, dict[str, float]] = {}
    for crops_dir in crops_dirs:
        crops, _ = read_index(crops_dir)
        margin = json.loads((crops_dir / "extract.json").read_text())["crop_margin"]
        pairing = build_pairing(crops)
        plan = [batch for epoch in range(1000) for batch in epoch_batches(pairing, "pairs", originals_per_batch, 0, epoch)]
        plan = plan[: batches + 1]
        for recipe, count in ((recipe, count) for recipe in recipes for count in workers):
            config = TrainConfig(originals_per_batch=originals_per_batch, augmentation=recipe)
            dataset = TrainBatches(plan, crops, crops_dir, config, margin, input_size)
            with single_threaded_opencv():
                loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=count)
                images, started = 0, 0.0
                for number, (tensor, _) in enumerate(loader):
                    if number == 0:
                        started = time.perf_counter()
                    else:
                        images += len(tensor)
                seconds = time.perf_counter() - started
            key = f"{crops_dir.name}, {recipe}, workers {count}"
            results[key] = {"images_per_s": round(images / seconds, 1), "images": images, "load": round(os.getloadavg()[0], 1)}
            log.info("%s: %.1f images/s", key, images / seconds)
    return results


DEFAULT_STEP_MODELS = "efficientnet_lite0@96,efficientnet_lite0@224,tf_efficientnet_b0@224"


def step_throughput(arch: str, input_size: int, batch: int, steps: int, device_name: str, threads: int) -> dict[str, float]:
    """Crops/s of one training step (forward, BCE, backward, AdamW; fp16 autocast on CUDA) on random crops, and the peak
    memory: CUDA's allocator peak on a GPU, the process's peak resident set on the CPU (so each model runs in its own
    process). The first two steps (allocation, cuDNN autotuning) are not timed."""
    import resource

    import torch

    from dfdc_infer.models import create_network

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    model = create_network(arch).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(batch, 3, input_size, input_size, device=device)
    labels = (torch.arange(batch, device=device) % 2).float()
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    started = 0.0
    for step in range(steps + 2):
        if step == 2:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            logits = model(images).view(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - started
    return {"crops_per_s": round(batch * steps / seconds, 1), "peak_mb": round(peak_mb), "batch": batch, "steps": steps,
            "device": device_name, "threads": threads, "load": round(os.getloadavg()[0], 1)}


def benchmark_steps(models: list[str], batch: int, steps: int, device_name: str, threads: int) -> dict[str, dict[str, float]]:
    """``step_throughput`` of each ``arch@size``, each in a fresh process so that its peak memory is its own."""
    import multiprocessing

    results = {}
    context = multiprocessing.get_context("spawn")
    for name in models:
        arch, size = name.split("@")
        with context.Pool(1) as pool:
            results[name] = pool.apply(step_throughput, (arch, int(size), batch, steps, device_name, threads))
        log.info("%s: %.1f crops/s, peak %d MB", name, results[name]["crops_per_s"], results[name]["peak_mb"])
    return results


def bare_loop(paths: list[Path], arch: str, input_size: int, batch: int, workers: int, pretrained: str) -> float:
    """Crops/s of the plainest fine-tuning loop on the same crops: JPEG decode, resize, flip, AdamW, BCE, one-cycle.

    The yardstick for ``train_epoch``: what a competitor's bare timm script reaches on this machine. It uses
    the same start (``build_model``) and the same data-loading worker count; only the training machinery differs.
    """
    import cv2
    import torch
    from torch.utils.data import DataLoader, Dataset

    from dfdc_infer.models import preprocess

    from dfdc_train.config import TrainConfig
    from dfdc_train.data import load_crop, single_threaded_opencv, to_input_size
    from dfdc_train.train import build_model

    class Crops(Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, index: int) -> tuple[torch.Tensor, float]:
            image = to_input_size(load_crop(paths[index]), input_size)
            if index % 2:
                image = cv2.flip(image, 1)
            return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0), float(index % 2)

    model, spec = build_model(TrainConfig(pretrained=pretrained, arch=arch, input_size=input_size))
    model.train()
    loader = DataLoader(Crops(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=len(loader))
    with single_threaded_opencv():
        started, crops = time.perf_counter(), 0
        for images, labels in loader:
            logits = model(preprocess(images, spec)).view(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            crops += len(images)
        return crops / (time.perf_counter() - started)


def our_loop(crops_dir: Path, arch: str, input_size: int, batch: int, steps: int, workers: int, pretrained: str,
             flags: dict) -> tuple[float, list[Path]]:
    """Crops/s of ``train.train_epoch`` (pairs sampler, the seed's augmentations, ``flags`` on top) over ``steps`` batches,
    and the crop files it used (for the bare loop)."""
    from dataclasses import replace

    import torch

    from dfdc_train.config import TrainConfig
    from dfdc_train.data import single_threaded_opencv, torch_threads
    from dfdc_train.sampling import Pairing
    from dfdc_train.schedule import build_optimizer, build_scheduler
    from dfdc_train.train import build_model, load_data, train_epoch
    from dfdc_train.distributed import Distributed

    config = TrainConfig(pretrained=pretrained, arch=arch, input_size=input_size, originals_per_batch=batch // 2, workers=workers,
                         epochs=1, **flags)
    data = load_data(crops_dir, config)
    usable = data.pairing.usable(config.sampler)[: steps * config.originals_per_batch]
    data = replace(data, pairing=Pairing(tuple(usable), 0, 0))
    model, spec = build_model(config)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_crops = data.splits["train"].crops
    rows = [row for original in usable for row in (*original.crops.values(), *next(iter(original.fakes.values())).values())]
    with single_threaded_opencv(), torch_threads(torch.get_num_threads()):
        started = time.perf_counter()
        train_epoch(model, spec, data, config, 0, optimizer, scheduler, scaler, torch.device("cpu"), Distributed())
        seconds = time.perf_counter() - started
    return steps * batch / seconds, [Path(crops_dir) / train_crops["path"].iloc[row] for row in rows]


def benchmark_loop(crops_dir: Path, model: str, batch: int, steps: int, workers: int, threads: int, pretrained: str,
                   rounds: int, flags: dict) -> dict[str, float]:
    """``our_loop`` and ``bare_loop`` side by side, alternating, ``rounds`` times each; medians and their ratio."""
    import torch

    arch, size = model.split("@")
    torch.set_num_threads(threads)
    ours, bare = [], []
    for _ in range(rounds):
        rate, paths = our_loop(crops_dir, arch, int(size), batch, steps, workers, pretrained, flags)
        ours.append(rate)
        bare.append(bare_loop(paths, arch, int(size), batch, workers, pretrained))
        log.info("our loop %.1f crops/s, bare timm loop %.1f crops/s", ours[-1], bare[-1])
    result = {"ours_crops_per_s": round(statistics.median(ours), 1), "bare_crops_per_s": round(statistics.median(bare), 1)}
    return {**result, "ratio": round(result["ours_crops_per_s"] / result["bare_crops_per_s"], 3), "model": model, "batch": batch,
            "steps": steps, "workers": workers, "threads": threads, "rounds": rounds, "ours": ours, "bare": bare, "flags": flags,
            "load": round(os.getloadavg()[0], 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_tools.benchmark_training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    masks = commands.add_parser("masks", help="difference mask methods against the true manipulated pixels")
    masks.add_argument("--work", type=Path, default=Path("runs/bench-masks"))
    masks.add_argument("--videos", type=int, default=14, help="generated videos (the REAL ones with a face are faked with every method)")
    masks.add_argument("--size", default="1920x1080")
    masks.add_argument("--frames", type=int, default=30)
    masks.add_argument("--crop-size", type=int, default=256)
    masks.add_argument("--seed", type=int, default=0)
    bench = commands.add_parser("extract", help="extraction throughput per stage, with and without box reuse; disk per crop")
    bench.add_argument("--work", type=Path, default=Path("runs/bench-extract"), help="generated data is kept here and reused")
    bench.add_argument("--videos", type=int, default=12, help="generated videos (half REAL, one without a face)")
    bench.add_argument("--size", default="1920x1080")
    bench.add_argument("--frames", type=int, default=300)
    bench.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both modes (medians)")
    bench.add_argument("--variants", default="256:jpg,380:jpg,384:jpg,384:png", help="crop size:format pairs for the disk figures")
    loader = commands.add_parser("loader", help="training images/s of the data loader with its augmentations")
    loader.add_argument("crops", type=Path, nargs="+", help="extraction outputs (e.g. the extract benchmark's crops-*)")
    loader.add_argument("--workers", default="0,1,2", help="DataLoader worker counts")
    loader.add_argument("--augmentations", default="seed,dfdc-1st", help="augmentation recipes (TrainConfig.augmentation)")
    loader.add_argument("--input-size", type=int, default=380)
    loader.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    loader.add_argument("--originals-per-batch", type=int, default=16)
    loader.add_argument("--work", type=Path, default=Path("runs/bench-loader"))
    step = commands.add_parser("step", help="training crops/s and peak memory of the network step (CPU, or the GPU when there is one)")
    step.add_argument("--models", default=DEFAULT_STEP_MODELS, help="comma-separated arch@input_size")
    step.add_argument("--batch", type=int, default=32, help="crops per step (16 originals and their fakes)")
    step.add_argument("--steps", type=int, default=5, help="timed steps per model")
    step.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    step.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    step.add_argument("--work", type=Path, default=Path("runs/bench-step"))
    loop = commands.add_parser("loop", help="crops/s of our training loop beside a bare timm loop on the same crops")
    loop.add_argument("crops", type=Path, help="an extraction output or a deepfake-faces folder")
    loop.add_argument("--model", default="efficientnet_lite0@128", help="arch@input_size")
    loop.add_argument("--pretrained", default="none", help="starting weights (TrainConfig.pretrained; the speed is the same)")
    loop.add_argument("--batch", type=int, default=32, help="crops per step")
    loop.add_argument("--steps", type=int, default=30, help="timed steps per loop")
    loop.add_argument("--workers", type=int, default=2)
    loop.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    loop.add_argument("--rounds", type=int, default=3, help="alternating runs of both loops (medians)")
    loop.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="a TrainConfig value for our loop (e.g. --set crappify_prob=0); repeatable")
    loop.add_argument("--work", type=Path, default=Path("runs/bench-loop"))
    args = parser.parse_args(argv)
    setup_logging()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.command == "masks":
        results: dict = benchmark_masks(args.work, args.videos, parse_size(args.size), args.frames, args.crop_size, args.seed)
    elif args.command == "extract":
        variants = [(int(size), image_format) for size, image_format in (item.split(":") for item in args.variants.split(","))]
        results = benchmark_extract(args.work, args.videos, parse_size(args.size), args.frames, args.rounds, variants)
    elif args.command == "step":
        import torch

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        results = benchmark_steps(args.models.split(","), args.batch, args.steps, device, args.threads)
    elif args.command == "loop":
        flags = {name: json.loads(value) for name, value in (item.split("=", 1) for item in args.set)}
        results = benchmark_loop(args.crops, args.model, args.batch, args.steps, args.workers, args.threads, args.pretrained,
                                 args.rounds, flags)
    else:
        results = benchmark_loader(args.crops, [int(n) for n in args.workers.split(",")], args.augmentations.split(","),
                                   args.input_size, args.batches, args.originals_per_batch)
    print(json.dumps(results, indent=1))
    (args.work / f"{args.command}.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(value) for value in text.lower().split("x"))
    return width, height


if __name__ == "__main__":
    sys.exit(main())
