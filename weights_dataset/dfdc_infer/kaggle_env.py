"""What the kernel needs around the pipeline: Kaggle paths, offline wheels, the packed dataset.

The kernel file stays a thin notebook; every decision it makes lives here, where it is tested.
This module imports only the standard library at the top, because it runs before the shipped
wheels (timm, av, decord) are installed.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import PRESETS, InferenceConfig, preset_config
from .manifest import read_manifest, verify_manifest

log = logging.getLogger(__name__)

KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_SUBMISSION = Path("/kaggle/working/submission.csv")


class DatasetError(RuntimeError):
    """The packed dataset or the competition inputs are not what the kernel needs."""


def find_competition_inputs(search_root: Path = KAGGLE_INPUT) -> tuple[Path, Path]:
    """``(test_videos dir, sample_submission.csv)`` of the competition attached to the notebook."""
    for sample in sorted(Path(search_root).glob("*/sample_submission.csv")) + sorted(
        Path(search_root).glob("*/*/sample_submission.csv")
    ):
        if (sample.parent / "test_videos").is_dir():
            return sample.parent / "test_videos", sample
    raise DatasetError(f"no */sample_submission.csv beside a test_videos folder under {search_root}")


def install_missing_wheels(dataset: Path, manifest: dict[str, Any], required: tuple[str, ...] = ("timm",)) -> list[str]:
    """``pip install --no-index --no-deps`` each shipped wheel whose module cannot be imported.

    Returns the modules installed. Kaggle's image has torch, numpy, pandas and OpenCV; what it
    lacks ships as wheels in the dataset, and nothing is ever downloaded. Only ``required`` ones
    must install: without av or decord the run reads with the next CPU reader, without PyNvVideoCodec it decodes on the CPU, so
    those failures are logged and the run goes on. PyNvVideoCodec is installed only where CUDA is. A wheel entry
    that is not a file of the dataset's own ``wheels/`` is refused before anything is installed.
    """
    import torch  # in Kaggle's image; only asked whether a GPU is there

    wheels = (Path(dataset) / "wheels").resolve()
    foreign = [wheel for wheel in manifest.get("wheels", {}).values()
               if not (wheel.startswith("wheels/") and (Path(dataset) / wheel).resolve().parent == wheels and wheel.endswith(".whl"))]
    if foreign:
        raise DatasetError(f"refused: the manifest's wheels must be files of the dataset's wheels/, got {', '.join(map(repr, foreign))}")

    installed = []
    for module, wheel in sorted(manifest.get("wheels", {}).items()):
        if importlib.util.find_spec(module) is not None:
            continue
        if module == "PyNvVideoCodec" and not torch.cuda.is_available():
            log.info("no CUDA: %s (GPU decode) not installed", module)
            continue
        log.info("installing %s from the dataset's %s (offline)", module, wheel)
        command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet", str(Path(dataset) / wheel)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            if module in required:
                raise DatasetError(f"pip could not install {wheel}: {completed.stderr.strip()[-500:]}")
            log.warning("pip could not install %s (the run goes on without %s): %s", wheel, module, completed.stderr.strip()[-300:])
            continue
        installed.append(module)
    importlib.invalidate_caches()
    return installed


def run_dataset(dataset: Path, videos: Path, sample_submission: Path, output: Path, report: Path | None = None) -> Any:
    """Verify the dataset against its manifest, then score with its ensemble and its settings
    (and write the report to ``report``: off by default, Kaggle hides a run's outputs on the private test)."""
    dataset = Path(dataset)
    manifest = read_manifest(dataset)
    problems = verify_manifest(dataset)
    if problems:
        raise DatasetError(f"dataset {dataset} does not match its manifest: " + "; ".join(problems[:5]))
    log.info("dataset %s verified: %d files; dfdc_infer loaded from %s", dataset, len(manifest["files"]), Path(__file__).parent)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if manifest.get("kernel_python", running) != running:
        log.warning("the dataset's wheels are for Python %s, this kernel runs %s: if one fails to install, rebuild with "
                    "build_submission.py --kernel-python %s", manifest["kernel_python"], running, running)
    install_missing_wheels(dataset, manifest)
    config = InferenceConfig.from_dict(manifest["config"])
    log.info("settings: %s", describe_settings(manifest.get("preset", "seed"), config))

    from .run import run_submission  # only after the wheels are in: it imports timm and decord

    return run_submission(
        config,
        videos,
        sample_submission,
        [dataset / model["file"] for model in manifest["ensemble"]],
        output,
        dataset / manifest["detector"]["weights_dir"],
        report=report,
    )


def describe_settings(preset: str, config: InferenceConfig) -> str:
    """``preset dfdc-1st`` plus the fields the build's flags changed from it, for the kernel's log."""
    base = preset_config(preset) if preset in PRESETS else InferenceConfig()
    changed = [f"{name}={value}" for name, value in config.to_dict().items() if getattr(base, name) != value]
    return f"preset {preset}" + (f", changed: {', '.join(changed)}" if changed else "")
