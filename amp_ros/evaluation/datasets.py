"""Readers for DAVIS and FBMS-59 on disk, and the results layout they are scored against.

DAVIS: ``<root>/JPEGImages[/480p]/<seq>/NNNNN.jpg`` and ``<root>/Annotations[/480p]/<seq>/
NNNNN.png`` (the resolution level is used when present). DAVIS-2016 masks are 0/255 grayscale
(> 127 is object); colour/palette masks (DAVIS-2017) have every non-black colour merged into one
foreground.

FBMS-59: ``<root>/<seq>/<seq>_NN.jpg`` (2–4 digits; ``tennis`` has ``tennis000.jpg``) and sparse
ground truth in ``<root>/<seq>/GroundTruth/``: ``<seq>_NN_gt.pgm``, ``<seq>_NNNN_gt.ppm``,
``tennisNNN.pgm`` or ``NNN_gt.png`` (FBMS-3D); ``*PROB*`` files are skipped. The number in a
ground-truth name is the number in its frame's name. All objects are merged into one foreground:
grayscale files have background 0; colour ``.ppm`` files have a white background (and black
counts as background too).

Results: one mask per frame at ``<results>/<seq>/<frame stem>.png`` (for DAVIS the same names as
the annotations); any nonzero pixel is object.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from amp_ros.errors import InputError

DATASETS = ("davis", "fbms")
"""Dataset layouts (and ground-truth conventions) this module reads."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
FBMS_GT_SUFFIXES = (".pgm", ".ppm", ".png")


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

    def result_name(self, frame_index: int) -> str:
        """File name of the result mask of frame `frame_index`: its frame's stem + '.png'."""
        return self.frames[frame_index].stem + ".png"

    def result_path(self, results_dir: str | Path, frame_index: int) -> Path:
        """Where the result mask of frame `frame_index` lives: <results>/<seq>/<stem>.png."""
        return Path(results_dir) / self.name / self.result_name(frame_index)

    def read_gt(self, k: int) -> np.ndarray:
        """The k-th ground-truth mask (of frame gt_frames[k]) as an H×W bool array."""
        if self.dataset == "fbms":
            return read_fbms_mask(self.gt_paths[k])
        return read_davis_mask(self.gt_paths[k])


def _natural_key(path: Path) -> list[object]:
    """Sort key that orders 'x_9' before 'x_10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files in `folder` with one of `suffixes` (case-insensitive), naturally sorted."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
        key=_natural_key,
    )


def _imread(path: Path) -> np.ndarray:
    """Pixels of an image file (H×W or H×W×C, as stored), or InputError naming the path."""
    if not path.is_file():
        raise InputError(f"mask file not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"cannot read mask file {path} (not an image OpenCV can decode)")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    return image


def read_frame(path: str | Path) -> np.ndarray:
    """A video frame as H×W×3 uint8 RGB (grayscale files are replicated to three channels)."""
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read frame {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _full_scale(image: np.ndarray) -> float:
    """Value of white for the image's dtype: 255 for uint8, 65535 for uint16, 1.0 for floats."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0


def read_davis_mask(path: str | Path) -> np.ndarray:
    """DAVIS annotation as H×W bool: grayscale > 127; colour/palette: any non-black pixel."""
    image = _imread(Path(path))
    if image.ndim == 3:
        return np.any(image > 0, axis=2)
    return image > _full_scale(image) / 2


def read_fbms_mask(path: str | Path) -> np.ndarray:
    """FBMS ground truth as H×W bool, all objects merged: grayscale > 0; colour: not white/black."""
    image = _imread(Path(path))
    if image.ndim == 3:
        white = np.all(image == _full_scale(image), axis=2)
        black = np.all(image == 0, axis=2)
        return ~(white | black)
    return image > 0


def read_result_mask(path: str | Path) -> np.ndarray:
    """Result mask as H×W bool: any nonzero pixel (any channel) is object."""
    image = _imread(Path(path))
    if image.ndim == 3:
        return np.any(image > 0, axis=2)
    return image > 0


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write an H×W binary mask as a 0/255 grayscale PNG (creating folders); returns the path."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"write_mask expects an H×W mask, got shape {mask.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.where(mask.astype(bool), 255, 0).astype(np.uint8)):
        raise OSError(f"could not write mask {path}")
    return path


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
        raise InputError(f"split file {path} lists no sequences")
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
    raise InputError(
        f"split {str(split)!r} not found; tried {', '.join(str(c) for c in candidates)}"
    )


def _select(available: list[str], sequences: Sequence[str] | None, split: str | Path | None,
            root: Path, where: Path) -> list[str]:
    """The requested sequence names (all available by default), checked to exist."""
    if sequences is not None and split is not None:
        raise InputError("give either a sequence list or a split file, not both")
    if split is not None:
        names = read_split(resolve_split(root, split))
    elif sequences is not None:
        names = list(dict.fromkeys(s.strip() for s in sequences if s.strip()))
        if not names:
            raise InputError("the sequence list is empty")
    else:
        names = available
    missing = [n for n in names if n not in available]
    if missing:
        raise InputError(f"sequence(s) {', '.join(missing)} not found in {where}")
    if not names:
        raise InputError(f"no sequences found in {where}")
    return names


def _level(folder: Path, resolution: str) -> Path:
    """`folder/resolution` when that level exists (DAVIS 480p), else `folder` itself."""
    return folder / resolution if (folder / resolution).is_dir() else folder


def load_davis(
    root: str | Path,
    *,
    sequences: Sequence[str] | None = None,
    split: str | Path | None = None,
    resolution: str = "480p",
) -> list[VideoSequence]:
    """Sequences of a DAVIS-layout dataset (with or without the resolution level).

    sequences: names to take; split: a split file (see read_split / resolve_split); default:
    every sequence folder in Annotations. Every annotation must have a frame of the same stem.
    """
    root = Path(root)
    annotations = root / "Annotations"
    images = root / "JPEGImages"
    for folder in (annotations, images):
        if not folder.is_dir():
            raise InputError(f"{root} is not a DAVIS-layout dataset: {folder} is missing")
    annotations = _level(annotations, resolution)
    images = _level(images, resolution)
    available = sorted(p.name for p in annotations.iterdir() if p.is_dir())
    result = []
    for name in _select(available, sequences, split, root, annotations):
        frame_dir = images / name
        if not frame_dir.is_dir():
            raise InputError(f"sequence {name!r} has annotations but no frames folder {frame_dir}")
        frames = _files(frame_dir, IMAGE_SUFFIXES)
        masks = _files(annotations / name, (".png",))
        if not masks:
            raise InputError(f"sequence {name!r} has no .png annotations in {annotations / name}")
        index = {p.stem: i for i, p in enumerate(frames)}
        orphans = [m for m in masks if m.stem not in index]
        if orphans:
            raise InputError(
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


def _fbms_number(stem: str, sequence: str) -> int | None:
    """Frame number in an FBMS file stem: the first integer after the sequence-name prefix."""
    rest = stem[len(sequence):] if stem.startswith(sequence) else stem
    match = re.search(r"\d+", rest)
    return int(match.group()) if match else None


def load_fbms(
    root: str | Path,
    *,
    sequences: Sequence[str] | None = None,
    split: str | Path | None = None,
) -> list[VideoSequence]:
    """Sequences of an FBMS-59 set folder (Trainingset or Testset) with their sparse ground truth.

    sequences / split as in load_davis; default: every folder with a GroundTruth subfolder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"FBMS root {root} is not a folder")
    available = sorted(p.name for p in root.iterdir() if (p / "GroundTruth").is_dir())
    if not available and any((root / s).is_dir() for s in ("Trainingset", "Testset")):
        raise InputError(
            f"{root} holds FBMS sets, not sequences: point --root at {root / 'Testset'} or "
            f"{root / 'Trainingset'}"
        )
    result = []
    for name in _select(available, sequences, split, root, root):
        frames = _files(root / name, IMAGE_SUFFIXES)
        numbers: dict[int, int] = {}
        for i, frame in enumerate(frames):
            number = _fbms_number(frame.stem, name)
            if number is None or number in numbers:
                raise InputError(f"cannot tell the frame number of {frame} uniquely")
            numbers[number] = i
        gts = [
            p
            for p in _files(root / name / "GroundTruth", FBMS_GT_SUFFIXES)
            if "prob" not in p.name.lower()
        ]
        if not gts:
            raise InputError(f"sequence {name!r} has no ground truth in {root / name}/GroundTruth")
        gt_frames = []
        for gt in gts:
            number = _fbms_number(gt.stem, name)
            if number is None or number not in numbers:
                raise InputError(f"ground truth {gt} matches no frame of {root / name}")
            gt_frames.append(numbers[number])
        if len(set(gt_frames)) != len(gt_frames):
            raise InputError(f"sequence {name!r} has two ground-truth files for one frame")
        order = sorted(range(len(gts)), key=gt_frames.__getitem__)
        result.append(
            VideoSequence(
                name=name,
                dataset="fbms",
                frames=tuple(frames),
                gt_paths=tuple(gts[k] for k in order),
                gt_frames=tuple(gt_frames[k] for k in order),
            )
        )
    return result


def load_dataset(
    dataset: str,
    root: str | Path,
    *,
    sequences: Sequence[str] | None = None,
    split: str | Path | None = None,
    resolution: str = "480p",
) -> list[VideoSequence]:
    """Sequences of `dataset` ('davis' or 'fbms') under `root`; see load_davis / load_fbms."""
    if dataset == "davis":
        return load_davis(root, sequences=sequences, split=split, resolution=resolution)
    if dataset == "fbms":
        return load_fbms(root, sequences=sequences, split=split)
    raise InputError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
