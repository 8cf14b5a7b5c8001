"""Training data shrunk to travel: DAVIS-layout folders at the training size, in parts.

A GPU machine reached through a size-limited copy of the repository (``scripts/device_train.sh``)
cannot read ``../shared/data``. ``python -m amp_ros.training.pack`` writes each ``--data``
folder again at ``--max-side``, shrunk as the pipeline shrinks frames
(:func:`~amp_ros.training.data.read_training_frame`, then lossy WebP) with its masks at that
size exactly as training reads them (:func:`~amp_ros.training.data.read_training_mask`, PNG
0/255), and splits the sequences into parts of at most ``--part-mb`` so that each part can travel
on its own::

    <out>/pack.json                                    what was packed, the data folders' order
    <out>/part1/<dataset>/JPEGImages/<seq>/00000.webp
    <out>/part1/<dataset>/Annotations/<seq>/00000.png
    <out>/part2/...

Copying every part into one folder (``cp -r <out>/part*/. <data>/``) gives data folders that
``amp-train --data <data>/<dataset> … --max-side <max side>`` reads under their own names
(a dataset's name is its folder's). Frames differ from the originals only by the WebP coding.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amp_ros.atomic_write import atomic_write
from amp_ros.errors import AmpError, InputError
from amp_ros.training.data import (
    dataset_name,
    list_sequences,
    read_training_frame,
    read_training_mask,
    sequence_files,
)

FRAME_SUFFIX = ".webp"
MASK_SUFFIX = ".png"
MANIFEST = "pack.json"
DEFAULT_QUALITY = 75  # WebP quality: 33 dB PSNR on DAVIS at 320 px, 34 MB for the three sets
DEFAULT_PART_MB = 15.0


@dataclass
class PackedSequence:
    """One sequence encoded in memory: its files (path inside a part → bytes)."""

    dataset: str
    name: str
    files: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def _encode(suffix: str, image: np.ndarray, params: Sequence[int] = ()) -> bytes:
    ok, data = cv2.imencode(suffix, image, list(params))
    if not ok:
        raise InputError(f"OpenCV cannot encode {suffix} images")
    return data.tobytes()


def pack_sequence(root: str | Path, name: str, max_side: int, quality: int) -> PackedSequence:
    """Encode one sequence of a DAVIS-layout folder at the training size."""
    dataset = dataset_name(root)
    files: dict[str, bytes] = {}
    for frame_path, mask_path in zip(*sequence_files(root, name), strict=True):
        frame = read_training_frame(frame_path, max_side)
        mask = read_training_mask(mask_path, frame.shape[:2])
        stem = frame_path.stem
        files[f"{dataset}/JPEGImages/{name}/{stem}{FRAME_SUFFIX}"] = _encode(
            FRAME_SUFFIX, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
            (cv2.IMWRITE_WEBP_QUALITY, quality))
        files[f"{dataset}/Annotations/{name}/{stem}{MASK_SUFFIX}"] = _encode(MASK_SUFFIX, mask * 255)
    return PackedSequence(dataset, name, files)


def split_parts(sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Indices of ``sizes`` grouped in order into parts of at most ``limit`` bytes each (a new
    part starts when the next item would not fit); an item above ``limit`` is an InputError."""
    parts: list[list[int]] = []
    total = limit + 1  # no open part yet
    for i, size in enumerate(sizes):
        if size > limit:
            raise InputError(f"item {i} takes {size} bytes, more than a part's {limit}")
        if total + size > limit:
            parts.append([])
            total = 0
        parts[-1].append(i)
        total += size
    return parts


def pack(data: Sequence[str | Path], out: str | Path, max_side: int, *,
         quality: int = DEFAULT_QUALITY, part_bytes: int = int(DEFAULT_PART_MB * 1e6),
         log: Callable[[str], None] = print) -> dict:
    """Write ``data`` (DAVIS-layout folders) shrunk and in parts under ``out``; returns the
    manifest it writes as ``out/pack.json``. ``out`` must not hold an earlier pack."""
    out = Path(out)
    if (out / MANIFEST).exists() or any(out.glob("part*")):
        raise InputError(f"{out} already holds a pack: remove it first")
    names = [dataset_name(d) for d in data]
    if len(set(names)) != len(names):
        raise InputError(f"two --data folders share a name: {names}")
    packed = []
    for root in data:
        for name in list_sequences(root):
            packed.append(pack_sequence(root, name, max_side, quality))
            log(f"{packed[-1].dataset}/{name}: {len(packed[-1].files) // 2} frames, "
                f"{packed[-1].size / 1e6:.2f} MB")
    too_big = [f"{p.dataset}/{p.name}" for p in packed if p.size > part_bytes]
    if too_big:
        raise InputError(f"{too_big[0]} alone is larger than a part ({part_bytes / 1e6:g} MB)")
    parts = split_parts([p.size for p in packed], part_bytes)
    manifest = {"max_side": max_side, "frame_format": f"webp quality {quality}",
                "datasets": names, "parts": []}
    for k, indices in enumerate(parts, start=1):
        part = f"part{k}"
        for i in indices:
            for relative, payload in packed[i].files.items():
                path = out / part / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(payload)
        manifest["parts"].append({
            "name": part, "bytes": sum(packed[i].size for i in indices),
            "sequences": [f"{packed[i].dataset}/{packed[i].name}" for i in indices]})
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    for part in manifest["parts"]:
        log(f"{out / part['name']}: {len(part['sequences'])} sequences, {part['bytes'] / 1e6:.1f} MB")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m amp_ros.training.pack``: exit status 1 with a message on bad input."""
    parser = argparse.ArgumentParser(prog="python -m amp_ros.training.pack",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", required=True,
                        help="DAVIS-layout folders, in amp-train's --data order (main set first)")
    parser.add_argument("--out", required=True, help="new folder for the pack")
    parser.add_argument("--max-side", type=int, required=True, help="the training size to pack at")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY,
                        help="WebP quality of the frames, 1–100 (default: %(default)s)")
    parser.add_argument("--part-mb", type=float, default=DEFAULT_PART_MB,
                        help="largest part in MB (10⁶ bytes) (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 1 <= args.quality <= 100 or args.max_side < 1 or args.part_mb <= 0:
        parser.error("--quality must lie in 1–100, --max-side and --part-mb be positive")
    try:
        pack(args.data, args.out, args.max_side, quality=args.quality,
             part_bytes=int(args.part_mb * 1e6))
    except AmpError as err:
        print(f"pack: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
