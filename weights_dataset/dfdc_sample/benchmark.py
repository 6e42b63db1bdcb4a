"""Timing benchmark: will this ensemble finish ~4000 videos inside Kaggle's 9 hours?

    python -m dfdc_sample.benchmark [--videos DIR] [--count 8] [--checkpoint a.pt ...] [--out runs/benchmark]

On the given folder (default: freshly generated 1920x1080, 300-frame H.264 videos) it measures, in
one run and on the same files:

- the decode floor: ``ffmpeg -threads N -i v.mp4 -f null -`` (every frame, no output);
- the seed's plain OpenCV loop (grab every frame, retrieve every 10th) and every other reader that
  runs here (decord; nvdec, the GPU decoder, where CUDA is), decode only;
- our reader (``--reader``, default auto), detection, classification, each per video;
- the whole pipeline end to end (decoding overlapped with detection and classification);
- peak memory of whole runs over 20 and 200 videos (it must stay flat);

then prints the ratios, projects the time for 4000 videos against the budget, and writes
``report.json`` (``build_submission.py --timing`` reads it) and ``stages.png``.
Medians over videos (stages) and over ``--repeats`` runs (end to end).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import imageio_ffmpeg
import torch

from dfdc_infer.config import InferenceConfig, add_config_arguments, config_from_args
from dfdc_infer.cropping import crop_frames
from dfdc_infer.device import resolve_device
from dfdc_infer.face_detection import create_detector
from dfdc_infer.models import Ensemble, init_checkpoint
from dfdc_infer.pipeline import VideoScorer
from dfdc_infer.video_reading import READERS, FrameReader, FrameSampling, ReaderUnavailable, choose_reader, create_reader
from dfdc_sample.generate import generate_dataset

TEST_VIDEOS = 4000
log = logging.getLogger("dfdc_sample.benchmark")


def interleaved_medians(items: Sequence[Path], works: dict[str, Callable[[Path], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds per item of each of ``works``, over ``items`` x ``repeats``.

    The works take turns on each item, so a burst of load from elsewhere on the machine hits all
    of them alike and the ratios between them stay fair.
    """
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for item in items:
            for name, work in works.items():
                started = time.perf_counter()
                work(item)
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def ffmpeg_floor(path: Path) -> None:
    threads = str(os.cpu_count() or 1)
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-threads", threads, "-i", str(path), "-f", "null", "-"]
    subprocess.run(command, check=True)


def end_to_end(config: InferenceConfig, ensemble: Ensemble, video_dir: Path, names: list[str]) -> tuple[float, dict[str, float]]:
    """Seconds per video of the whole pipeline, and its per-stage seconds per video."""
    scorer = VideoScorer(config, create_detector(config), ensemble)
    results = list(scorer.score(video_dir, names))
    per_video = {stage: seconds / len(results) for stage, seconds in scorer.stats.stages.as_dict().items()}
    return scorer.stats.seconds / len(results), per_video


def _memory_probe(config: InferenceConfig, checkpoints: list[Path], video_dir: Path, names: list[str], queue: multiprocessing.Queue) -> None:
    """Child process: score ``names`` and report this process's peak resident memory (MB)."""
    logging.getLogger("dfdc_infer").setLevel(logging.ERROR)
    ensemble = Ensemble.load(checkpoints, resolve_device(config.device), config.fp16)
    end_to_end(config, ensemble, video_dir, names)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_memory_mb(config: InferenceConfig, checkpoints: list[Path], video_dir: Path, count: int) -> float:
    """Peak RSS of a fresh process scoring ``count`` videos (names linked to the sample videos)."""
    sources = sorted(video_dir.glob("*.mp4"))
    linked = video_dir.parent / f"linked_{count}"
    linked.mkdir(exist_ok=True)
    names = []
    for index in range(count):
        name = f"v{index:04d}.mp4"
        if not (linked / name).exists():
            (linked / name).symlink_to(sources[index % len(sources)].resolve())
        names.append(name)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_memory_probe, args=(config, checkpoints, linked, names, queue))
    child.start()
    peak = queue.get()
    child.join()
    return peak


def runnable_readers() -> dict[str, FrameReader]:
    """Every registered reader that can run on this machine (``nvdec`` only with CUDA)."""
    readers = {}
    for name in sorted(READERS):
        try:
            readers[name] = create_reader(name)
        except ReaderUnavailable as error:
            log.info("reader %s skipped: %s", name, error)
    return readers


def measure(args: argparse.Namespace, config: InferenceConfig) -> dict:
    out: Path = args.out
    video_dir = args.videos
    if video_dir is None:
        data = out / f"data_{args.size[0]}x{args.size[1]}_{args.frames}"
        if not (data / "test_videos").is_dir():
            log.info("generating %d %dx%d %d-frame videos in %s", args.count, *args.size, args.frames, data)
            generate_dataset(data, videos=args.count, width=args.size[0], height=args.size[1], frames=args.frames)
        video_dir = data / "test_videos"
    paths = sorted(Path(video_dir).glob("*.mp4"))[: args.count]
    if not paths:
        raise FileNotFoundError(f"no .mp4 files in {video_dir}")
    checkpoints = args.checkpoint or [init_checkpoint(out / "untrained-b0.pt", "tf_efficientnet_b0")]
    device = resolve_device(config.device)
    ensemble = Ensemble.load(checkpoints, device, config.fp16)
    detector = create_detector(config)
    reader_name = choose_reader(config.reader)
    reader = create_reader(reader_name)

    log.info("decode floor (ffmpeg) and every reader that runs here on %d videos, %d rounds", len(paths), args.repeats)
    sampling = FrameSampling.of(config)
    works = {name: (lambda path, backend=backend: backend.read(path, sampling))
             for name, backend in runnable_readers().items()}
    by_reader = interleaved_medians(paths, {"ffmpeg": ffmpeg_floor, **works}, args.repeats)
    floor = by_reader.pop("ffmpeg")
    opencv, ours = by_reader["opencv"], by_reader[reader_name]

    samples = [reader.read(path, sampling) for path in paths]
    detect_times, crop_batches = [], []
    for sample in samples:
        started = time.perf_counter()
        detections = detector.detect(sample.frames)
        detect_times.append(time.perf_counter() - started)
        crop_batches.append(crop_frames(sample.frames, detections, ensemble.crop_size, config.crop_margin, config.all_faces,
                                        config.crop_geometry, config.max_crops_per_video)[0])
    classify_times = []
    for crops in crop_batches:
        started = time.perf_counter()
        ensemble.predict(crops, config.batch_size)
        classify_times.append(time.perf_counter() - started)
    frames = statistics.median(len(sample.indices) for sample in samples)
    crops = statistics.median(len(batch) for batch in crop_batches)
    del samples, crop_batches

    names = [path.name for path in paths]
    runs = sorted((end_to_end(config, ensemble, paths[0].parent, names) for _ in range(args.repeats)), key=lambda run: run[0])
    e2e, stages_in_run = runs[len(runs) // 2]  # the median run
    gpu_busy = stages_in_run["detect"] + stages_in_run["classify"]

    memory = {}
    for count in args.memory:
        log.info("peak memory over %d videos", count)
        memory[str(count)] = round(peak_memory_mb(config, list(checkpoints), paths[0].parent, count), 1)

    budget_hours = config.budget_hours - config.budget_margin_hours
    projected = e2e * TEST_VIDEOS / 3600
    return {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": str(device),
                    "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                    "torch": torch.__version__, "python": platform.python_version()},
        "videos": {"folder": str(paths[0].parent), "count": len(paths), "sampled_frames_median": frames, "crops_median": crops},
        "ensemble": [f"{spec.arch}@{spec.input_size}" for spec in ensemble.specs],
        "config": config.to_dict(),
        "seconds_per_video": {
            "ffmpeg_decode_floor": floor,
            "opencv_grab_retrieve": opencv,
            f"decode_{reader_name}": ours,
            "detect": statistics.median(detect_times),
            "classify": statistics.median(classify_times),
        },
        "decode_seconds_per_video_by_reader": by_reader,
        "detect_frames_per_second": frames / statistics.median(detect_times),
        "classify_crops_per_second": crops / statistics.median(classify_times) if crops else None,
        "end_to_end_seconds_per_video": e2e,
        "end_to_end_runs": [seconds for seconds, _ in runs],
        "videos_per_second": 1 / e2e,
        "ratios": {
            "end_to_end_over_our_decode": e2e / ours,
            "our_decode_over_opencv_loop": ours / opencv,
            "end_to_end_over_ffmpeg_floor": e2e / floor,
        },
        "gpu_idle_share": max(0.0, 1 - gpu_busy / e2e) if device.type == "cuda" else None,
        "peak_memory_mb": memory,
        "projection": {"videos": TEST_VIDEOS, "hours": projected, "budget_hours": budget_hours, "fits": projected <= budget_hours},
    }


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {**report["seconds_per_video"], "end_to_end": report["end_to_end_seconds_per_video"]}
    figure, axis = plt.subplots(figsize=(8, 4))
    bars = axis.barh(list(stages), list(stages.values()), color=["#999999"] * 2 + ["#4c72b0"] * 3 + ["#dd8452"])
    axis.bar_label(bars, fmt="%.2f s")
    axis.invert_yaxis()
    axis.set_xlabel("seconds per video (median)")
    projection = report["projection"]
    axis.set_title(f"{', '.join(report['ensemble'])} on {report['machine']['device']}: "
                   f"{projection['hours']:.1f} h for {projection['videos']} videos (budget {projection['budget_hours']:.1f} h)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _size(text: str) -> tuple[int, int]:
    width, height = (int(value) for value in text.lower().split("x"))
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_sample.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, help="folder of .mp4 files (default: generate them)")
    parser.add_argument("--count", type=int, default=8, help="videos to measure (default 8)")
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="generated video size (default 1920x1080)")
    parser.add_argument("--frames", type=int, default=300, help="generated frames per video (default 300)")
    parser.add_argument("--checkpoint", type=Path, action="append", help="ensemble to time (default: one untrained B0)")
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs; the median is reported")
    parser.add_argument("--memory", type=lambda text: [int(v) for v in text.split(",") if v], default=[20, 200],
                        help="video counts for the peak-memory runs (default 20,200; empty to skip)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        report = measure(args, config_from_args(args))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, args.out / "stages.png")
    print(json.dumps({key: report[key] for key in ("seconds_per_video", "end_to_end_seconds_per_video", "ratios",
                                                    "peak_memory_mb", "projection", "gpu_idle_share")}, indent=2))
    print(f"wrote {args.out / 'report.json'} and {args.out / 'stages.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
