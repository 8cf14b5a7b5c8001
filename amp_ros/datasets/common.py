"""What every dataset layout shares: the sequence record, image files, split files.

Imports no ROS and no torch. The layouts themselves are in :mod:`amp_ros.datasets.davis` and
:mod:`amp_ros.datasets.fbms`; the results layout in :mod:`amp_ros.datasets.results`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from amp_ros.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DatasetError(InputError):
    """A dataset root, sequence, frame or annotation is missing or malformed."""


@dataclass(frozen=True)
class VideoSequence:
    """One video: every frame in temporal order and the ground truth of its annotated frames."""

    name: str
    dataset: str
    """'davis' or 'fbms': decides how ground-truth files are binarised."""
    frames: tuple[Path, ...]
    gt_paths: tuple[Path, ...]
    gt_frames: tuple[int, ...]
    """Index into `frames` of each ground-truth mask (DAVIS-2016: 0..n-1; FBMS: sparse)."""
    gt_background: int | None = None
    """FBMS with a Def.dat: the background's grey value or packed 0xRRGGBB colour (region 0)."""

    def read_gt(self, k: int) -> np.ndarray:
        """The k-th ground-truth mask (of frame gt_frames[k]) as an H×W bool array."""
        if self.dataset == "fbms":
            from amp_ros.datasets.fbms import read_fbms_mask

            return read_fbms_mask(self.gt_paths[k], self.gt_background)
        from amp_ros.datasets.davis import read_davis_mask

        return read_davis_mask(self.gt_paths[k])


def natural_key(path: Path) -> list[object]:
    """Sort key that orders 'x_9' before 'x_10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def files_with_suffixes(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files in `folder` with one of `suffixes` (case-insensitive), naturally sorted."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
        key=natural_key,
    )


def image_files(folder: str | Path) -> list[Path]:
    """The image files in `folder` (IMAGE_SUFFIXES), in natural order ('x_9' before 'x_10')."""
    return files_with_suffixes(Path(folder), IMAGE_SUFFIXES)


def read_image(path: Path) -> np.ndarray:
    """Pixels of an image file (H×W or H×W×C, as stored), or DatasetError naming the path."""
    if not path.is_file():
        raise DatasetError(f"mask file not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"cannot read mask file {path} (not an image OpenCV can decode)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def read_frame(path: str | Path) -> np.ndarray:
    """A video frame as H×W×3 uint8 RGB (grayscale files are replicated to three channels)."""
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read frame {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def full_scale(image: np.ndarray) -> float:
    """Value of white for the image's dtype: 255 for uint8, 65535 for uint16, 1.0 for floats."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0


def read_split(path: str | Path) -> list[str]:
    """Sequence names in a split file, in order, without repeats.

    Accepts one name per line (DAVIS-2017 ImageSets, FBMS lists) and DAVIS-2016's
    ``/JPEGImages/480p/<seq>/00000.jpg /Annotations/...`` lines (the frame's folder is the
    name). Blank lines and lines starting with '#' are skipped.
    """
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token = line.split()[0]
        name = PurePosixPath(token).parent.name if "/" in token else token
        if name and name not in names:
            names.append(name)
    if not names:
        raise DatasetError(f"split file {path} lists no sequences")
    return names


def resolve_split(root: str | Path, split: str | Path) -> Path:
    """Find a split file: the path, else <root>/<split>[.txt], else ImageSets/**/<split>[.txt]."""
    root = Path(root)
    given = Path(split)
    candidates = [given, root / given, root / f"{split}.txt"]
    imagesets = root / "ImageSets"
    if imagesets.is_dir():
        candidates += sorted(imagesets.rglob(f"{given.name}.txt"))
        candidates += sorted(imagesets.rglob(given.name))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"split {str(split)!r} not found; tried {', '.join(str(c) for c in candidates)}"
    )


def select_names(available: list[str], sequences: Sequence[str] | None, split: str | Path | None,
            root: Path, where: Path) -> list[str]:
    """The requested sequence names (all available by default), checked to exist."""
    if sequences is not None and split is not None:
        raise DatasetError("give either a sequence list or a split file, not both")
    if split is not None:
        names = read_split(resolve_split(root, split))
    elif sequences is not None:
        names = list(dict.fromkeys(s.strip() for s in sequences if s.strip()))
        if not names:
            raise DatasetError("the sequence list is empty")
    else:
        names = available
    missing = [n for n in names if n not in available]
    if missing:
        raise DatasetError(f"sequence(s) {', '.join(missing)} not found in {where}")
    if not names:
        raise DatasetError(f"no sequences found in {where}")
    return names


def missing_sequence_error(kind: str, root: Path, sequence: str, known: list[str]) -> DatasetError:
    """The error for a sequence name that `root` does not have, listing (some of) those it has."""
    shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return DatasetError(
        f"{kind} root {str(root)!r} has no sequence {sequence!r}; "
        f"it has {len(known)}: {shown or 'none'}"
    )


