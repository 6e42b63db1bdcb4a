"""Timing benchmark: will this ensemble finish ~4000 videos inside Kaggle's 9 hours?

    python -m dfdc_tools.benchmark_inference [--videos DIR] [--count 8] [--checkpoint a.pt ...] [--out runs/benchmark]

On the given folder (default: freshly generated 1920x1080, 300-frame H.264 videos) it measures, in
one run and on the same files:

- the decode floor: ``ffmpeg -threads N -i v.mp4 -f null -`` (every frame, no output);
- every reader that runs here, decode only, taking turns per video: the seed's plain OpenCV loop
  (grab every frame, retrieve the sampled ones), PyAV, decord, and nvdec (the GPU decoder) where
  CUDA is;
- detection (``face_tracking``: the detector on the frames that need it) and classification, each
  per video;
- the whole pipeline end to end (decoding, detection and classification overlapped), with
  detection skipping as configured and with every sampled frame detected, taking turns, over
  ``--e2e-videos`` videos (the measured ones repeated) after one untimed warm-up run: a run of
  4000 videos is judged by its steady throughput, and with a handful of videos the pipeline's fill
  and drain (nothing to classify until the first video is detected) and the first calls' one-off
  costs (oneDNN builds its kernels per input shape) would dominate;
- peak memory of whole runs over 20 and 200 videos (it must stay flat);
- on CUDA, the GPU's idle share of the end-to-end run: the time no stage's stream had work, from
  CUDA events on the decode, detect and classify streams (``streams.GpuTimeline``), so NVDEC
  decoding and queued kernels count as busy and host-side waiting does not;

then prints the goal ratios (end to end over the fastest reader's decode plus classification; the
default CPU reader over the OpenCV loop), projects the time for 4000 videos against the budget,
and writes ``report.json`` (``build_submission.py --timing`` reads it) and ``stages.png`` (the
per-stage medians, and the timeline of one end-to-end run showing which stages overlap).
Medians over videos x ``--repeats`` (stages) and over ``--repeats`` runs (end to end).
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import imageio_ffmpeg
import torch

from dfdc_infer.config import InferenceConfig, add_config_arguments, config_from_args
from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.cropping import crop_frames
from dfdc_infer.device import resolve_device
from dfdc_infer.face_detection import create_detector
from dfdc_infer.models import Ensemble, checkpoint_presets, init_checkpoint
from dfdc_infer.face_tracking import FaceTracker
from dfdc_infer.pipeline import Span, VideoScorer
from dfdc_infer.video_reading import AUTO_READERS, READERS, FrameReader, FrameSampling, ReaderUnavailable, choose_reader, create_reader
from dfdc_sample.generate import generate_dataset

TEST_VIDEOS = 4000
GOALS = {"end_to_end_over_decode_plus_classify": 1.2, "default_cpu_reader_over_opencv_loop": 1.0}
"""The throughput goals (issue 11), as ratios measured within one run so they hold on a noisy machine."""
GPU_STAGES = ("decode", "detect", "classify")
"""Stages whose CUDA stream work counts as the GPU being busy (NVDEC decoding included)."""
log = logging.getLogger("dfdc_tools.benchmark_inference")


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


@dataclass(frozen=True)
class EndToEnd:
    """One whole-pipeline run over the benchmark's videos."""

    seconds_per_video: float
    stages: dict[str, float]
    """Per-stage seconds per video (stages overlap, so they may add up to more than the total)."""
    timeline: list[Span]
    seconds: float
    gpu_timeline: list[Span]
    """On CUDA: each stage's stream work on the GPU's clock (CUDA events), empty on the CPU."""
    gpu_seconds: float


def end_to_end(config: InferenceConfig, ensemble: Ensemble, video_dir: Path, names: list[str]) -> EndToEnd:
    """The whole pipeline on ``names``, as ``predict`` runs it."""
    scorer = VideoScorer(config, create_detector(config), ensemble)
    results = list(scorer.score(video_dir, names))
    stages = {stage: seconds / len(results) for stage, seconds in scorer.stats.stages.as_dict().items()}
    stats = scorer.stats
    return EndToEnd(stats.seconds / len(results), stages, stats.timeline, stats.seconds, stats.gpu_timeline, stats.gpu_seconds)


def busy_share(timeline: list[Span], stages: tuple[str, ...], seconds: float) -> float:
    """Share of ``seconds`` during which at least one of ``stages`` was running (their spans' union)."""
    spans = sorted((span.start, span.end) for span in timeline if span.stage in stages)
    busy, reach = 0.0, 0.0
    for start, end in spans:
        busy += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return min(busy / seconds, 1.0) if seconds > 0 else 0.0


def _memory_probe(config: InferenceConfig, checkpoints: list[Path], video_dir: Path, names: list[str], queue: multiprocessing.Queue) -> None:
    """Child process: score ``names`` and report this process's peak resident memory (MB)."""
    logging.getLogger("dfdc_infer").setLevel(logging.ERROR)
    ensemble = Ensemble.load(checkpoints, resolve_device(config.device), config.fp16, config.flip_crops)
    end_to_end(config, ensemble, video_dir, names)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def linked_videos(sources: Sequence[Path], count: int, folder: Path) -> list[str]:
    """``count`` names in ``folder``, symlinks cycling through ``sources`` (a long run from a few files)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        name = f"v{index:04d}.mp4"
        if not (folder / name).exists():
            (folder / name).symlink_to(sources[index % len(sources)].resolve())
        names.append(name)
    return names


def peak_memory_mb(config: InferenceConfig, checkpoints: list[Path], video_dir: Path, count: int) -> float:
    """Peak RSS of a fresh process scoring ``count`` videos (names linked to the sample videos)."""
    linked = video_dir.parent / f"linked_{count}"
    names = linked_videos(sorted(video_dir.glob("*.mp4")), count, linked)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_memory_probe, args=(config, checkpoints, linked, names, queue))
    child.start()
    peak = queue.get()
    child.join()
    return peak


def runnable_readers(device: str = "auto") -> dict[str, FrameReader]:
    """Every registered reader that can run on this machine for ``device`` (``nvdec`` only with CUDA)."""
    readers = {}
    for name in sorted(READERS):
        try:
            readers[name] = create_reader(name, device)
        except ReaderUnavailable as error:
            log.info("reader %s skipped: %s", name, error)
    return readers


def benchmark_videos(args: argparse.Namespace) -> list[Path]:
    """The first ``--count`` videos of ``--videos``, or of a generated set (made once per size and length in ``--out``)."""
    video_dir = args.videos
    if video_dir is None:
        data = args.out / f"data_{args.size[0]}x{args.size[1]}_{args.frames}"
        if not (data / "test_videos").is_dir():
            log.info("generating %d %dx%d %d-frame videos in %s", args.count, *args.size, args.frames, data)
            generate_dataset(data, videos=args.count, width=args.size[0], height=args.size[1], frames=args.frames)
        video_dir = data / "test_videos"
    paths = sorted(Path(video_dir).glob("*.mp4"))[: args.count]
    if not paths:
        raise FileNotFoundError(f"no .mp4 files in {video_dir}")
    return paths


def decode_seconds(paths: list[Path], config: InferenceConfig, repeats: int) -> dict[str, float]:
    """Median decode seconds per video of the ffmpeg floor (``"ffmpeg"``) and of every reader that runs here."""
    log.info("decode floor (ffmpeg) and every reader that runs here on %d videos, %d rounds", len(paths), repeats)
    sampling = FrameSampling.of(config)
    works = {name: (lambda path, backend=backend: backend.read(path, sampling))
             for name, backend in runnable_readers(config.device).items()}
    return interleaved_medians(paths, {"ffmpeg": ffmpeg_floor, **works}, repeats)


@dataclass(frozen=True)
class Stages:
    """Detection and classification timed apart, one video at a time: seconds and crops are medians per video."""

    detect: float
    classify: float
    detected_frame_share: float
    """Share of the sampled frames the detector ran on (face tracking skips the others)."""
    crops_median: float


def time_stages(paths: list[Path], config: InferenceConfig, reader_name: str, ensemble: Ensemble) -> Stages:
    """Each video decoded untimed, then its detection and its classification timed."""
    log.info("detection and classification per video")
    reader = create_reader(reader_name, config.device)
    tracker = FaceTracker(create_detector(config), config.detect_every)
    sampling = FrameSampling.of(config)
    detect_times, classify_times, frames, crops = [], [], [], []
    for path in paths:
        sample = reader.read(path, sampling)
        started = time.perf_counter()
        detections = tracker.detect(sample.frames, sample.indices)
        detect_times.append(time.perf_counter() - started)
        batch = crop_frames(sample.frames, detections, ensemble.crop_size, config.crop_margin, config.all_faces,
                            config.crop_geometry, config.max_crops_per_video)[0]
        frames.append(len(sample.indices))
        crops.append(len(batch))
        del sample, detections  # one 1080p sample in memory at a time
        started = time.perf_counter()
        ensemble.predict(batch, config.batch_size)
        classify_times.append(time.perf_counter() - started)
    return Stages(statistics.median(detect_times), statistics.median(classify_times),
                  tracker.detected_frames / max(sum(frames), 1), statistics.median(crops))


def end_to_end_runs(config: InferenceConfig, ensemble: Ensemble, paths: list[Path], videos: int, repeats: int,
                    work: Path) -> dict[str, list[EndToEnd]]:
    """``repeats`` whole-pipeline runs over ``videos`` videos (``paths`` repeated) after an untimed warm-up: as
    configured (``"configured"``) and, when detection skips frames, detecting every frame (``"detect_every_frame"``),
    taking turns."""
    folder = work / f"linked_e2e_{len(paths)}_{videos}"
    names = linked_videos(paths, videos, folder)
    log.info("end to end over %d videos (%d files repeated), a warm-up run, then %d rounds, detection skipping %s",
             len(names), len(paths), repeats, "on and off, taking turns" if config.detect_every > 1 else "off")
    variants = {"configured": config}
    if config.detect_every > 1:
        variants["detect_every_frame"] = replace(config, detect_every=1)
    end_to_end(config, ensemble, folder, names[: len(paths)])  # warm-up, untimed
    runs: dict[str, list[EndToEnd]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, variant in variants.items():
            runs[name].append(end_to_end(variant, ensemble, folder, names))
    return runs


def measure(args: argparse.Namespace, config: InferenceConfig) -> dict:
    """Every figure of the report (see the module doc), measured on the same videos in one run."""
    paths = benchmark_videos(args)
    checkpoints = args.checkpoint or [init_checkpoint(args.out / "untrained-b0.pt", "tf_efficientnet_b0")]
    device = resolve_device(config.device)
    ensemble = Ensemble.load(checkpoints, device, config.fp16, config.flip_crops)
    reader_name = choose_reader(config.reader, config.device)

    by_reader = decode_seconds(paths, config, args.repeats)
    floor = by_reader.pop("ffmpeg")
    fastest = min(by_reader, key=by_reader.__getitem__)
    cpu_default = next((name for name in AUTO_READERS if name != "nvdec" and name in by_reader), "opencv")
    stages = time_stages(paths, config, reader_name, ensemble)
    runs = end_to_end_runs(config, ensemble, paths, args.e2e_videos, args.repeats, args.out)
    medians = {name: sorted(found, key=lambda run: run.seconds_per_video)[len(found) // 2] for name, found in runs.items()}
    e2e = medians["configured"]
    memory = {}
    for count in args.memory:
        log.info("peak memory over %d videos", count)
        memory[str(count)] = round(peak_memory_mb(config, list(checkpoints), paths[0].parent, count), 1)

    budget_hours = config.budget_hours - config.budget_margin_hours
    projected = e2e.seconds_per_video * TEST_VIDEOS / 3600
    ratios = {
        "end_to_end_over_decode_plus_classify": e2e.seconds_per_video / (by_reader[fastest] + stages.classify),
        "default_cpu_reader_over_opencv_loop": by_reader[cpu_default] / by_reader["opencv"],
        "end_to_end_over_our_decode": e2e.seconds_per_video / by_reader[reader_name],
        "end_to_end_over_ffmpeg_floor": e2e.seconds_per_video / floor,
    }
    return {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "device": str(device),
                    "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
                    "torch": torch.__version__, "python": platform.python_version(), "load_average": os.getloadavg()},
        "videos": {"folder": str(paths[0].parent), "count": len(paths), "end_to_end_count": args.e2e_videos,
                   "crops_median": stages.crops_median},
        "ensemble": [f"{spec.arch}@{spec.input_size}" for spec in ensemble.specs],
        "config": config.to_dict(),
        "seconds_per_video": {
            "ffmpeg_decode_floor": floor,
            "opencv_grab_retrieve": by_reader["opencv"],
            f"decode_{reader_name}": by_reader[reader_name],
            "detect": stages.detect,
            "classify": stages.classify,
        },
        "decode_seconds_per_video_by_reader": by_reader,
        "readers": {"used": reader_name, "fastest": fastest, "default_cpu": cpu_default},
        "detected_frame_share": stages.detected_frame_share,
        "end_to_end_seconds_per_video": e2e.seconds_per_video,
        "end_to_end_runs": [run.seconds_per_video for run in runs["configured"]],
        "end_to_end_seconds_per_video_by_detection": {name: run.seconds_per_video for name, run in medians.items()},
        "end_to_end_stage_seconds_per_video": e2e.stages,
        "videos_per_second": 1 / e2e.seconds_per_video,
        "ratios": ratios,
        "goals": {name: {"ratio": ratios[name], "target": target, "met": ratios[name] <= target} for name, target in GOALS.items()},
        "gpu_idle_share": 1 - busy_share(e2e.gpu_timeline, GPU_STAGES, e2e.gpu_seconds) if device.type == "cuda" else None,
        "timeline": [[span.stage, round(span.start, 4), round(span.end, 4)] for span in e2e.timeline],
        "peak_memory_mb": memory,
        "projection": {"videos": TEST_VIDEOS, "hours": projected, "budget_hours": budget_hours, "fits": projected <= budget_hours},
    }


def chart(report: dict, path: Path) -> None:
    """Per-stage medians (bars) over the timeline of the median end-to-end run (overlapping stages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {**report["seconds_per_video"], **{f"end to end ({name})": value for name, value in
                                                report["end_to_end_seconds_per_video_by_detection"].items()}}
    figure, (bars_axis, timeline_axis) = plt.subplots(2, 1, figsize=(9, 7), height_ratios=(3, 2))
    colours = ["#999999"] * 2 + ["#4c72b0"] * 3 + ["#dd8452"] * (len(stages) - 5)
    bars = bars_axis.barh(list(stages), list(stages.values()), color=colours)
    bars_axis.bar_label(bars, fmt="%.2f s")
    bars_axis.invert_yaxis()
    bars_axis.set_xlabel("seconds per video (median)")
    projection = report["projection"]
    bars_axis.set_title(f"{', '.join(report['ensemble'])} on {report['machine']['device']}: "
                        f"{projection['hours']:.1f} h for {projection['videos']} videos (budget {projection['budget_hours']:.1f} h)")
    lanes = ["decode", "detect", "crop", "classify"]
    for lane, stage in enumerate(lanes):
        spans = [(start, end - start) for name, start, end in report["timeline"] if name == stage]
        timeline_axis.broken_barh(spans, (lane - 0.4, 0.8), color=f"C{lane}")
    timeline_axis.set_yticks(range(len(lanes)), lanes)
    timeline_axis.invert_yaxis()
    timeline_axis.set_xlabel("seconds since the run started (one end-to-end run: stages overlap in time)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _size(text: str) -> tuple[int, int]:
    width, height = (int(value) for value in text.lower().split("x"))
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_tools.benchmark_inference", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, help="folder of .mp4 files (default: generate them)")
    parser.add_argument("--count", type=int, default=8, help="videos to measure (default 8)")
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="generated video size (default 1920x1080)")
    parser.add_argument("--frames", type=int, default=300, help="generated frames per video (default 300)")
    parser.add_argument("--checkpoint", type=Path, action="append", help="ensemble to time (default: one untrained B0)")
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs; the median is reported")
    parser.add_argument("--e2e-videos", type=int, default=16,
                        help="videos per end-to-end run, the measured ones repeated (default 16: fill, drain and warm-up amortised)")
    parser.add_argument("--memory", type=lambda text: [int(v) for v in text.split(",") if v], default=[20, 200],
                        help="video counts for the peak-memory runs (default 20,200; empty to skip)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        report = measure(args, config_from_args(args, trained_for=lambda: checkpoint_presets(args.checkpoint or [])))
    except USER_ERRORS as error:
        return fail(error)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, args.out / "stages.png")
    print(json.dumps({key: report[key] for key in ("seconds_per_video", "decode_seconds_per_video_by_reader", "readers",
                                                    "end_to_end_seconds_per_video_by_detection", "videos_per_second",
                                                    "detected_frame_share", "ratios", "peak_memory_mb", "projection",
                                                    "gpu_idle_share")}, indent=2))
    for name, goal in report["goals"].items():
        print(f"goal {name}: {goal['ratio']:.2f} (target <= {goal['target']}) {'met' if goal['met'] else 'NOT met'}")
    print(f"wrote {args.out / 'report.json'} and {args.out / 'stages.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
