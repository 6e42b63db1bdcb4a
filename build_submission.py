"""Pack trained checkpoints into one Kaggle dataset folder (< 1 GB) and one kernel folder.

    python build_submission.py --checkpoint a.pt --checkpoint b.pt --out build/

writes ``build/weights_dataset/`` (the inference package, the checkpoints, the MTCNN weights, the
wheels Kaggle lacks, built for the kernel's Python, ``manifest.json`` with the settings of
``--preset`` and the flags, ``dataset-metadata.json``) and ``build/kernel/`` (the kernel as ``.py``
and ``.ipynb`` plus ``kernel-metadata.json``), ready for ``kaggle datasets create`` and ``kaggle
kernels push``. Every input is checked, and the 1 GB limit is checked, before anything is written;
each problem is one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import timm
import torch
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

import dfdc_infer
from dfdc_infer.config import InferenceConfig, add_config_arguments, chosen_preset, config_from_args, preset_config
from dfdc_infer.console import USER_ERRORS, fail
from dfdc_infer.detector_weights import MTCNN_WEIGHT_FILES, mtcnn_weights
from dfdc_infer.manifest import list_files, write_manifest
from dfdc_infer.models import CheckpointError, Ensemble, ModelSpec, checkpoint_presets, load_model, save_checkpoint
from dfdc_infer.progress import format_duration

KAGGLE_LIMIT_BYTES = 1_000_000_000
FP16_TOLERANCE = 1e-3
BUDGET_HOURS = 9.0
TEST_VIDEOS = 4000
KERNEL_SOURCE = Path(__file__).resolve().parent / "kernel" / "dfdc_kernel.py"
FP16_CHECK_FACE = Path(__file__).resolve().parent / "fp16-check-face.jpg"
"""The fp16 check's face: the sample data's astronaut head (scikit-image's ``data.astronaut()``, public domain), a JPEG
of a few KB, so the build needs no development package to find one."""
WHEEL_MODULES = {"timm": "timm", "av": "av", "decord": "decord", "PyNvVideoCodec": "pynvvideocodec"}  # module -> distribution; timm is required
CPU_READER_MODULES = ("av", "decord")  # shipped at the version installed here, when it is; the kernel falls back without them
GPU_DECODE_WHEEL = "pynvvideocodec==2.2.4"  # NVDEC reader (video_reading.NvdecReader); needs only the NVIDIA driver
KAGGLE_PYTHON = "3.12"
"""Python of Kaggle's current notebook image: Kaggle/docker-python's Dockerfile.tmpl installs into
/usr/local/lib/python3.12/dist-packages (since its "Python 3.12 bump"). Check with ``!python -V``."""
KERNEL_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
"""Wheels the kernel can install: Kaggle's image is x86_64 Linux with glibc 2.35 or newer (Ubuntu 22.04
and up); every manylinux tag up to 2.28, listed one by one (pip expands none of the PEP 600 names)."""
FP16_CHECK_CROPS = 4  # B7@380 costs ~1.4 CPU-seconds per crop: 4 crops x 2 passes x 7 B7s is ~80 CPU-seconds


class BuildError(Exception):
    """A problem with the user's inputs; printed as one line, exit code 2."""


@dataclass(frozen=True)
class PackedModel:
    """One checkpoint, opened and rebuilt once: a bad one fails the build, not the kernel."""

    source: Path
    file: str
    network: torch.nn.Module
    spec: ModelSpec

    def packed_bytes(self, fp32: bool) -> int:
        """Bytes of the stored tensors (torch.save adds a few KB of structure on top)."""
        state = self.network.state_dict().values()
        return sum(t.numel() * (4 if fp32 or not t.is_floating_point() else 2) for t in state)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="repeat for an ensemble")
    parser.add_argument("--out", type=Path, default=Path("build"))
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--fp32", action="store_true", help="keep checkpoints fp32 (default: fp16, half the size)")
    parser.add_argument("--wheels", type=Path, help="folder with the timm (and av, decord, pynvvideocodec) wheels; default: pip download")
    parser.add_argument("--kernel-python", default=KAGGLE_PYTHON, metavar="X.Y",
                        help=f"Python version of the Kaggle image the wheels must install on (default {KAGGLE_PYTHON}, Kaggle's current)")
    parser.add_argument("--no-gpu-decode", action="store_true",
                        help=f"leave out {GPU_DECODE_WHEEL} (27 MB, GPU decode); the kernel then decodes on the CPU")
    parser.add_argument("--detector-weights", type=Path, help="folder with MTCNN pnet/rnet/onet.pt; default: mtcnn/ in --cache-dir, fetched once")
    parser.add_argument("--dataset-slug", default="your-kaggle-username/dfdc-offline-weights")
    parser.add_argument("--dataset-title", default="DFDC offline weights")
    parser.add_argument("--license", default="other", help="Kaggle licence name for the dataset")
    parser.add_argument("--kernel-slug", default="your-kaggle-username/dfdc-offline-submission")
    parser.add_argument("--competition", default="deepfake-detection-challenge")
    parser.add_argument("--timing", type=Path, help="benchmark JSON report: warn when the projected run passes 9 h")
    parser.add_argument("--max-bytes", type=int, default=KAGGLE_LIMIT_BYTES, help="dataset size limit (Kaggle: 1 GB)")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def load_models(paths: Sequence[Path]) -> list[PackedModel]:
    models = []
    for index, path in enumerate(paths):
        try:
            network, spec = load_model(path)
        except (FileNotFoundError, CheckpointError) as error:
            raise BuildError(str(error)) from error
        models.append(PackedModel(Path(path), f"models/model-{index}-{Path(path).stem}.pt", network, spec))
    return models


def sample_crops(size: int, count: int = FP16_CHECK_CROPS) -> np.ndarray:
    """Face crops for the fp16 check: ``FP16_CHECK_FACE`` at several zooms and colours."""
    rgb = cv2.cvtColor(cv2.imread(str(FP16_CHECK_FACE)), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(count):
        top, left = (int(side * rng.uniform(0, 0.125)) for side in (height, width))
        patch = rgb[top : height - top, left : width - left] * rng.uniform(0.7, 1.3, size=3)
        crops.append(cv2.resize(patch.clip(0, 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(crops)


def fp16_prediction_change(model: PackedModel) -> float:
    """Largest |P(fake) fp32 - P(fake) with fp16-stored weights| over the sample crops."""
    rounded = copy.deepcopy(model.network)
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in model.network.state_dict().items()})
    ensemble = Ensemble([(model.network, model.spec), (rounded, model.spec)], torch.device("cpu"))
    both = ensemble.predict(sample_crops(model.spec.input_size))
    return float(np.abs(both[0] - both[1]).max())


def kernel_tags(python: str) -> set[Tag]:
    """Wheel tags a CPython ``python`` ("3.12") on Kaggle's Linux accepts."""
    version = tuple(int(part) for part in python.split("."))
    interpreter = f"cp{version[0]}{version[1]}"
    return set(cpython_tags(version, platforms=KERNEL_PLATFORMS)) | set(compatible_tags(version, interpreter, KERNEL_PLATFORMS))


def installs_on(wheel: Path, tags: set[Tag]) -> bool:
    try:
        return bool(parse_wheel_filename(wheel.name)[3] & tags)
    except InvalidWheelFilename:
        return False


def download_wheels(requirements: list[str], python: str, into: Path) -> None:
    """``pip download`` each requirement as a wheel for the kernel's Python and platform, not this
    machine's; one that PyPI has no such wheel for is named in the error."""
    platforms = [flag for platform in KERNEL_PLATFORMS for flag in ("--platform", platform)]
    for requirement in requirements:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:", "--python-version", python,
                   "--implementation", "cp", *platforms, "-d", str(into), requirement]
        completed = subprocess.run(command, capture_output=True, text=True)
        if "No matching distribution" in completed.stderr:
            gpu = ", --no-gpu-decode" if requirement == GPU_DECODE_WHEEL else ""
            raise BuildError(f"no {requirement} wheel for CPython {python} on manylinux x86_64 on the package index: "
                             f"pass another --kernel-python{gpu}, or --wheels DIR with one")
        if completed.returncode != 0:
            raise BuildError(f"pip download {requirement} failed (offline? pass --wheels DIR): {completed.stderr.strip()[-300:]}")


def collect_wheels(wheel_dir: Path | None, into: Path, python: str, gpu_decode: bool = True) -> dict[str, Path]:
    """``{module: wheel path}`` installable on CPython ``python``: from the user's folder, or ``pip
    download`` of the versions used here plus PyNvVideoCodec (never importable on a machine without
    an NVIDIA driver, so pinned)."""
    if wheel_dir is None:
        versions = {"timm": timm.__version__}
        for module in CPU_READER_MODULES:
            try:
                versions[module] = importlib.import_module(module).__version__
            except ImportError:
                pass
        requirements = [f"{WHEEL_MODULES[module]}=={version}" for module, version in versions.items()]
        download_wheels(([GPU_DECODE_WHEEL] if gpu_decode else []) + requirements, python, into)  # the one built per Python first
        wheel_dir = into
    if not Path(wheel_dir).is_dir():
        raise BuildError(f"wheel folder not found: {wheel_dir}")
    tags = kernel_tags(python)
    chosen = {}
    for module, name in WHEEL_MODULES.items():
        if module == "PyNvVideoCodec" and not gpu_decode:
            continue
        found = sorted(Path(wheel_dir).glob(f"{name}-*.whl"))
        fitting = [wheel for wheel in found if installs_on(wheel, tags)]
        if found and not fitting:
            raise BuildError(f"no {name} wheel in {wheel_dir} installs on CPython {python} (--kernel-python): found {', '.join(w.name for w in found)}")
        if fitting:
            chosen[module] = fitting[-1]
    if "timm" not in chosen:
        raise BuildError(f"no timm-*.whl in {wheel_dir}: the kernel needs timm offline")
    return chosen


def size_plan(models: list[PackedModel], fp32: bool, fixed: dict[str, int]) -> list[tuple[str, int]]:
    """``(what, bytes)`` for everything the dataset will hold, largest first."""
    rows = [(f"{m.file} ({m.spec.arch}, {'fp32' if fp32 else 'fp16'})", m.packed_bytes(fp32)) for m in models]
    return sorted(rows + list(fixed.items()), key=lambda row: -row[1])


def over_limit_message(models: list[PackedModel], fp32: bool, fixed: dict[str, int], limit: int, gpu_decode_bytes: int = 0) -> str:
    """The table of what takes the space, then the steps that bring the dataset under ``limit``, the
    least costly first (fp16, then CPU decoding, then fewer models), each with the size it leaves."""
    rows = size_plan(models, fp32, fixed)
    total = sum(size for _, size in rows)
    lines = [f"the dataset would be {total / 1e9:.3f} GB, over the {limit / 1e9:.2f} GB limit", ""]
    lines += [f"  {size / 1e6:10.1f} MB  {what}" for what, size in rows]
    lines += ["", "what would bring it under, step by step:"]
    base = sum(fixed.values())

    def step(what: str, models_bytes: int) -> int:
        size = base + models_bytes
        lines.append(f"  - {what}: {size / 1e9:.3f} GB, {'fits' if size <= limit else 'still over'}")
        return size

    if fp32:
        fp32 = False  # the later steps start from fp16
        total = step("store fp16 (drop --fp32)", sum(m.packed_bytes(False) for m in models))
    if total > limit and gpu_decode_bytes:
        base -= gpu_decode_bytes
        total = step(f"leave out GPU decoding (--no-gpu-decode, {gpu_decode_bytes / 1e6:.0f} MB; the kernel decodes on the CPU)",
                     sum(m.packed_bytes(fp32) for m in models))
    if total > limit:
        kept = sorted(models, key=lambda m: m.packed_bytes(fp32))
        dropped = []
        while kept and base + sum(m.packed_bytes(fp32) for m in kept) > limit:
            dropped.append(kept.pop())
        if kept:
            step(f"leave out the largest model(s): {', '.join(str(m.source) for m in dropped)}", sum(m.packed_bytes(fp32) for m in kept))
        else:
            lines.append("  - no subset of these models fits: use smaller architectures")
    return "\n".join(lines)


def notebook_from_percent(source: str) -> str:
    """The jupytext percent script as ``.ipynb`` text, by jupytext itself (the format's own
    converter). Cell ids are the cell's position, not nbformat's random ones, so two builds write
    the same notebook."""
    import jupytext  # build-time only (requirements.txt); the kernel never needs it

    notebook = jupytext.reads(source, fmt="py:percent")
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
    return jupytext.writes(notebook, fmt="ipynb")


def write_kernel(folder: Path, args: argparse.Namespace) -> None:
    folder.mkdir(parents=True)
    source = KERNEL_SOURCE.read_text()
    (folder / KERNEL_SOURCE.name).write_text(source)
    notebook = folder / KERNEL_SOURCE.with_suffix(".ipynb").name
    notebook.write_text(notebook_from_percent(source))
    metadata = {
        "id": args.kernel_slug,
        "title": args.kernel_slug.split("/")[-1],
        "code_file": notebook.name,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_internet": False,
        "dataset_sources": [args.dataset_slug],
        "competition_sources": [args.competition],
        "kernel_sources": [],
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


def write_dataset(folder: Path, models: list[PackedModel], wheels: dict[str, Path], detector: Path,
                  config: InferenceConfig, preset: str, args: argparse.Namespace) -> dict:
    package = Path(dfdc_infer.__file__).resolve().parent
    shutil.copytree(package, folder / "dfdc_infer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for model in models:
        save_checkpoint(folder / model.file, model.network, model.spec, dtype=None if args.fp32 else torch.float16)
    (folder / "mtcnn").mkdir()
    for name in MTCNN_WEIGHT_FILES:
        shutil.copyfile(detector / name, folder / "mtcnn" / name)
    (folder / "wheels").mkdir()
    for wheel in wheels.values():
        shutil.copyfile(wheel, folder / "wheels" / wheel.name)
    manifest = write_manifest(folder, {
        "dfdc_infer_version": dfdc_infer.__version__,
        "versions": {"python": platform.python_version(), "torch": torch.__version__.split("+")[0], "timm": timm.__version__},
        "kernel_python": args.kernel_python,
        "ensemble": [
            {"file": m.file, "source": m.source.name, "arch": m.spec.arch, "input_size": m.spec.input_size,
             "mean": list(m.spec.mean), "std": list(m.spec.std), "dtype": "float32" if args.fp32 else "float16",
             "meta": m.spec.meta}
            for m in models
        ],
        "detector": {"name": config.detector, "weights_dir": "mtcnn",
                     "source": "facenet-pytorch 2.6.0 wheel (PyPI), facenet_pytorch/data/*.pt, MIT licence"},
        "wheels": {module: f"wheels/{wheel.name}" for module, wheel in wheels.items()},
        "preset": preset,
        "config": config.to_dict(),
    })
    metadata = {"title": args.dataset_title, "id": args.dataset_slug, "licenses": [{"name": args.license}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return manifest


def projected_hours(report: Path) -> float:
    data = json.loads(Path(report).read_text())
    return float(data["end_to_end_seconds_per_video"]) * TEST_VIDEOS / 3600


def build(args: argparse.Namespace) -> None:
    started = time.monotonic()
    preset = chosen_preset(args, lambda: checkpoint_presets(args.checkpoint))
    config = config_from_args(args, preset_config(preset))
    if not re.fullmatch(r"3\.\d{1,2}", args.kernel_python):
        raise BuildError(f"--kernel-python takes a CPython version like {KAGGLE_PYTHON}, got {args.kernel_python!r}")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise BuildError(f"{out} exists; pass --force to replace it")
    models = load_models(args.checkpoint)
    detector = mtcnn_weights(args.detector_weights, config.cache_dir)
    with tempfile.TemporaryDirectory(prefix="dfdc_wheels_") as downloads:
        wheels = collect_wheels(args.wheels, Path(downloads), args.kernel_python, gpu_decode=not args.no_gpu_decode)
        package = Path(dfdc_infer.__file__).resolve().parent
        fixed = {
            "dfdc_infer/ (inference code)": sum(size["bytes"] for size in list_files(package).values()),
            "mtcnn/ (face detector)": sum((detector / name).stat().st_size for name in MTCNN_WEIGHT_FILES),
            **{f"wheels/{wheel.name}": wheel.stat().st_size for wheel in wheels.values()},
        }
        total = sum(size for _, size in size_plan(models, args.fp32, fixed))
        if total > args.max_bytes:
            gpu_wheel = wheels.get("PyNvVideoCodec")
            raise BuildError(over_limit_message(models, args.fp32, fixed, args.max_bytes, gpu_wheel.stat().st_size if gpu_wheel else 0))
        if not args.fp32:
            for model in models:
                change = fp16_prediction_change(model)
                print(f"fp16 check {model.source.name}: largest prediction change {change:.2e}")
                if change > FP16_TOLERANCE:
                    raise BuildError(f"{model.source}: fp16 changes predictions by {change:.2e} > {FP16_TOLERANCE}; use --fp32")
        if out.exists():
            shutil.rmtree(out)
        manifest = write_dataset(out / "weights_dataset", models, wheels, detector, config, preset, args)
    write_kernel(out / "kernel", args)
    dataset_bytes = sum(item["bytes"] for item in manifest["files"].values())
    print(f"wrote {out / 'weights_dataset'}: {len(manifest['files'])} files, {dataset_bytes / 1e6:.1f} MB "
          f"(limit {args.max_bytes / 1e9:.2f} GB)")
    print(f"wrote {out / 'kernel'}: {KERNEL_SOURCE.name}, {KERNEL_SOURCE.stem}.ipynb, kernel-metadata.json")
    if args.timing:
        hours = projected_hours(args.timing)
        flag = "WARNING: over" if hours > BUDGET_HOURS else "within"
        print(f"{flag} the {BUDGET_HOURS:.0f} h budget: {hours:.1f} h projected for {TEST_VIDEOS} videos ({args.timing})")
    print(f"build took {format_duration(time.monotonic() - started)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        build(args)
    except (BuildError, *USER_ERRORS) as error:  # USER_ERRORS: reading a preset from a checkpoint, too
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
