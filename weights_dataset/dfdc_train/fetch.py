"""The download -> unzip -> extract -> delete loop (``extract --fetch COMMAND``): DFDC's 470 GB
never has to fit on the disk, one chunk (~10 GB zipped) at a time does.

This module does the fetching half: run the user's download command for one chunk, check and
unzip what it left, and remember which chunks are finished (``FetchLog``) so a rerun never
downloads them again. ``extract.extract_fetched`` drives the loop. A download that fails or leaves
a corrupt zip is retried, then recorded as failed, and the loop goes on with the next chunk; a rerun
tries the failed chunks again.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any, Collection

from .layout import Chunk

log = logging.getLogger(__name__)

FETCH_LOG = "fetch.jsonl"


def fetch_command(template: str, number: int, root: Path) -> str:
    """The shell command for chunk ``number``: ``{n}``, ``{dir}`` and ``{zip}`` filled in (paths quoted).

    Raises ValueError naming the template when it has another placeholder.
    """
    try:
        return template.format(n=number, dir=shlex.quote(str(root)), zip=shlex.quote(str(zip_path(root, number))))
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"bad --fetch command {template!r}: use the placeholders {{n}}, {{dir}} and {{zip}} ({error!r})") from None


def zip_path(root: Path, number: int) -> Path:
    """Where the fetch command must leave chunk ``number``'s zip (the Kaggle CLI's own name for it)."""
    return Path(root) / f"dfdc_train_part_{number}.zip"


def fetch_chunk(chunk: Chunk, template: str, retries: int) -> str:
    """Download and unzip ``chunk`` into its folder (``ROOT/dfdc_train_part_{n}/``), trying up to
    ``1 + retries`` times; "" on success, else the last reason.

    The zip is deleted whatever happens: unzipped, its 10 GB are no longer needed; corrupt, it
    must be downloaded again.
    """
    reason = ""
    for attempt in range(1, retries + 2):
        log.info("chunk %d: fetching (try %d of %d)", chunk.number, attempt, retries + 1)
        reason = _fetch_once(chunk, template)
        if not reason:
            return ""
        log.warning("chunk %d: %s", chunk.number, reason)
    return f"{reason} ({retries + 1} tries)"


def _fetch_once(chunk: Chunk, template: str) -> str:
    """One try: run the command, unzip; "" on success, else why not."""
    root = chunk.path.parent
    archive = zip_path(root, chunk.number)
    archive.unlink(missing_ok=True)  # a stale zip from an interrupted run proves nothing
    try:
        result = subprocess.run(fetch_command(template, chunk.number, root), shell=True, capture_output=True, text=True,
                                errors="replace")
        if result.returncode != 0:
            last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1][:200]
            return f"fetch command failed (exit {result.returncode}): {last}"
        if not archive.is_file():
            return f"the fetch command left no {archive.name} in {root}"
        return unzip_chunk(archive, chunk.path)
    finally:
        archive.unlink(missing_ok=True)


def unzip_chunk(archive: Path, target: Path) -> str:
    """Unzip a chunk's zip into ``target``; "" on success, else why it is unusable.

    The zip is unpacked next to ``target`` first and moved into place only when complete and
    holding a metadata.json (at its top or in its one top folder, whatever that is named), so
    ``target`` never holds half a chunk.
    """
    unpacked = target.with_name(target.name + ".unzipping")
    shutil.rmtree(unpacked, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(unpacked)  # checks every member's CRC
        found = sorted(unpacked.glob("metadata.json")) or sorted(unpacked.glob("*/metadata.json"))
        if not found:
            return f"corrupt zip {archive.name}: no metadata.json in it"
        if target.exists():
            return f"{target} exists without a metadata.json; move it away"
        os.replace(found[0].parent, target)
        return ""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as error:
        return f"corrupt zip {archive.name} ({error})"
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def delete_videos(chunk: Chunk, keep: Collection[str] = ()) -> int:
    """Delete every video of a finished chunk but those named in ``keep`` (metadata.json stays, a
    record of what was there)."""
    videos = sorted(path for path in chunk.path.glob("*.mp4") if path.name not in keep)
    for path in videos:
        path.unlink()
    return len(videos)


class FetchLog:
    """``OUT/fetch.jsonl``: one JSON line per chunk outcome, ``done`` or ``failed``; a chunk's last
    line counts. Appended, flushed and fsynced like the done-lists; a torn last line is ignored."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / FETCH_LOG

    def done(self) -> set[int]:
        """The chunks whose last outcome is ``done``."""
        if not self.path.is_file():
            return set()
        last: dict[int, str] = {}
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash: that chunk simply is not done
            last[int(entry["chunk"])] = entry["status"]
        return {chunk for chunk, status in last.items() if status == "done"}

    def add(self, chunk: int, status: str, **details: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"chunk": chunk, "status": status, **details}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
