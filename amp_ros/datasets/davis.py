"""DAVIS on disk: ``<root>/JPEGImages[/480p]/<seq>/NNNNN.jpg`` and
``<root>/Annotations[/480p]/<seq>/NNNNN.png`` (the resolution level is used when present).

DAVIS-2016 masks are 0/255 grayscale (> 127 is object); colour/palette masks (DAVIS-2017) have
every non-black colour merged into one foreground.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amp_ros.datasets.common import (
    DatasetError,
    VideoSequence,
    files_with_suffixes,
    full_scale,
    image_files,
    read_image,
    select_names,
)


def read_davis_mask(path: str | Path) -> np.ndarray:
    """DAVIS annotation as H×W bool: grayscale > 127; colour/palette: any non-black pixel."""
    image = read_image(Path(path))
    if image.ndim == 3:
        return np.any(image > 0, axis=2)
    return image > full_scale(image) / 2



def _level(folder: Path, resolution: str) -> Path:
    """`folder/resolution` when that level exists (DAVIS 480p), else `folder` itself."""
    return folder / resolution if (folder / resolution).is_dir() else folder


def _davis_folders(root: Path, resolution: str) -> tuple[Path, Path]:
    """(frames folder, annotations folder) of a DAVIS root, at `resolution` where it exists."""
    images = root / "JPEGImages"
    annotations = root / "Annotations"
    for folder in (images, annotations):
        if not folder.is_dir():
            raise DatasetError(f"{root} is not a DAVIS root: {folder} is missing")
    return _level(images, resolution), _level(annotations, resolution)


def davis_sequences(root: str | Path, *, resolution: str = "480p") -> list[str]:
    """Sequence names of a DAVIS root: the folders in Annotations[/480p], sorted."""
    _, annotations = _davis_folders(Path(root), resolution)
    return sorted(p.name for p in annotations.iterdir() if p.is_dir())


def load_davis(
    root: str | Path,
    *,
    sequences: Sequence[str] | None = None,
    split: str | Path | None = None,
    resolution: str = "480p",
) -> list[VideoSequence]:
    """Sequences of a DAVIS-layout dataset (with or without the resolution level).

    sequences: names to take; split: a split file (see read_split / resolve_split); default:
    every sequence folder in Annotations. Every annotation must have a frame of the same stem;
    frames without an annotation are allowed (they are not in gt_frames).
    """
    root = Path(root)
    available = davis_sequences(root, resolution=resolution)
    images, annotations = _davis_folders(root, resolution)
    result = []
    for name in select_names(available, sequences, split, root, annotations):
        frame_dir = images / name
        if not frame_dir.is_dir():
            raise DatasetError(
                f"sequence {name!r} has annotations but no frames folder {frame_dir}"
            )
        frames = image_files(frame_dir)
        masks = files_with_suffixes(annotations / name, (".png",))
        if not masks:
            raise DatasetError(
                f"sequence {name!r} has no .png annotations in {annotations / name}"
            )
        index = {p.stem: i for i, p in enumerate(frames)}
        orphans = [m for m in masks if m.stem not in index]
        if orphans:
            raise DatasetError(
                f"annotation {orphans[0]} has no frame named {orphans[0].stem}.* in {frame_dir}"
            )
        result.append(
            VideoSequence(
                name=name,
                dataset="davis",
                frames=tuple(frames),
                gt_paths=tuple(masks),
                gt_frames=tuple(index[m.stem] for m in masks),
            )
        )
    return result
