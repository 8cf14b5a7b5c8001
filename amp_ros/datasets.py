"""Readers for DAVIS and FBMS-59 on disk, and the results layout they are scored against.

The one dataset reader of amp_ros: the evaluation (``amp_ros.evaluation``), the bag writer
(``amp_ros.bag.write``) and the demo/benchmark all read frames and ground truth through it.
Imports no ROS and no torch.

DAVIS: ``<root>/JPEGImages[/480p]/<seq>/NNNNN.jpg`` and ``<root>/Annotations[/480p]/<seq>/
NNNNN.png`` (the resolution level is used when present). DAVIS-2016 masks are 0/255 grayscale
(> 127 is object); colour/palette masks (DAVIS-2017) have every non-black colour merged into one
foreground.

FBMS-59: ``<root>/<seq>/<seq>_NN.jpg`` (2–4 digits; ``tennis`` has ``tennis000.jpg``), in the
order of ``<root>/<seq>/<seq>.bmf`` when that frame list exists (else natural file-name order),
and sparse ground truth in ``<root>/<seq>/GroundTruth/``. With a ``<seq>Def.dat`` definition file
there, it names the annotated frames and their mask files, and the scale (grey value or packed
0xRRGGBB colour) of region 0 is the background. Without one, the ground-truth files
(``<seq>_NN_gt.pgm``, ``<seq>_NNNN_gt.ppm``, ``tennisNNN.pgm`` or ``NNN_gt.png`` (FBMS-3D);
``*PROB*`` files are skipped) are matched to frames by the number in their names, grayscale files
have background 0 and colour ``.ppm`` files a white background (black counts as background too).
Either way all objects are merged into one foreground. ``<root>`` is one set folder (Trainingset
or Testset); :func:`fbms_sequences` / :func:`fbms_set_folder` also look into both sets.

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

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
FBMS_GT_SUFFIXES = (".pgm", ".ppm", ".png")
FBMS_SETS = ("Trainingset", "Testset")


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

    def result_name(self, frame_index: int) -> str:
        """File name of the result mask of frame `frame_index`: its frame's stem + '.png'."""
        return self.frames[frame_index].stem + ".png"

    def result_path(self, results_dir: str | Path, frame_index: int) -> Path:
        """Where the result mask of frame `frame_index` lives: <results>/<seq>/<stem>.png."""
        return Path(results_dir) / self.name / self.result_name(frame_index)

    def read_gt(self, k: int) -> np.ndarray:
        """The k-th ground-truth mask (of frame gt_frames[k]) as an H×W bool array."""
        if self.dataset == "fbms":
            return read_fbms_mask(self.gt_paths[k], self.gt_background)
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


def image_files(folder: str | Path) -> list[Path]:
    """The image files in `folder` (IMAGE_SUFFIXES), in natural order ('x_9' before 'x_10')."""
    return _files(Path(folder), IMAGE_SUFFIXES)


def _imread(path: Path) -> np.ndarray:
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


def _full_scale(image: np.ndarray) -> float:
    """Value of white for the image's dtype: 255 for uint8, 65535 for uint16, 1.0 for floats."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0


def read_davis_mask(path: str | Path) -> np.ndarray:
    """DAVIS annotation as H×W bool: grayscale > 127; colour/palette: any non-black pixel."""
    image = _imread(Path(path))
    if image.ndim == 3:
        return np.any(image > 0, axis=2)
    return image > _full_scale(image) / 2


def read_fbms_mask(path: str | Path, background: int | None = None) -> np.ndarray:
    """FBMS ground truth as H×W bool, all objects merged.

    background: the Def.dat region-0 scale (grey value, or packed 0xRRGGBB for colour files);
    every other value is object. None: grayscale > 0; colour: neither white nor black.
    """
    image = _imread(Path(path))
    if background is not None:
        if image.ndim == 3:
            rgb = image[:, :, ::-1].astype(np.int64)  # OpenCV loads BGR
            image = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        return image != background
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
        raise DatasetError(f"write_mask expects an H×W mask, got shape {mask.shape}")
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


def _select(available: list[str], sequences: Sequence[str] | None, split: str | Path | None,
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


def _missing_sequence(kind: str, root: Path, sequence: str, known: list[str]) -> DatasetError:
    """The error for a sequence name that `root` does not have, listing (some of) those it has."""
    shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return DatasetError(
        f"{kind} root {str(root)!r} has no sequence {sequence!r}; "
        f"it has {len(known)}: {shown or 'none'}"
    )


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
    for name in _select(available, sequences, split, root, annotations):
        frame_dir = images / name
        if not frame_dir.is_dir():
            raise DatasetError(
                f"sequence {name!r} has annotations but no frames folder {frame_dir}"
            )
        frames = image_files(frame_dir)
        masks = _files(annotations / name, (".png",))
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


def _fbms_names(folder: Path) -> list[str]:
    """Sequence names of one FBMS set folder: its subfolders with a GroundTruth folder."""
    return sorted(p.name for p in folder.iterdir() if (p / "GroundTruth").is_dir())


def _fbms_set_folders(root: Path) -> list[Path]:
    """`root` and those of its Trainingset/ and Testset/ folders that exist."""
    if not root.is_dir():
        raise DatasetError(f"FBMS root {root} is not a folder")
    return [root] + [root / s for s in FBMS_SETS if (root / s).is_dir()]


def fbms_sequences(root: str | Path) -> list[str]:
    """Sequence names under an FBMS-59 root: its own and those of its Trainingset/ and Testset/."""
    return sorted({n for folder in _fbms_set_folders(Path(root)) for n in _fbms_names(folder)})


def fbms_set_folder(root: str | Path, sequence: str) -> Path:
    """The set folder that holds FBMS `sequence`: `root` itself, or its Trainingset/ or Testset/."""
    root = Path(root)
    for folder in _fbms_set_folders(root):
        if (folder / sequence / "GroundTruth").is_dir():
            return folder
    raise _missing_sequence("FBMS", root, sequence, fbms_sequences(root))


def _fbms_number(stem: str, sequence: str) -> int | None:
    """Frame number in an FBMS file stem: the first integer after the sequence-name prefix."""
    rest = stem[len(sequence):] if stem.startswith(sequence) else stem
    match = re.search(r"\d+", rest)
    return int(match.group()) if match else None


def _fbms_frames(folder: Path) -> list[Path]:
    """Frames of an FBMS sequence: in the order of <seq>.bmf when it exists, else natural order."""
    by_stem = {p.stem: p for p in image_files(folder)}
    bmf = folder / f"{folder.name}.bmf"
    if not bmf.is_file():
        return list(by_stem.values())
    frames = []
    for entry in bmf.read_text().split()[2:]:  # header: "<frames> <views>"
        stem = PurePosixPath(entry).stem
        if stem not in by_stem:
            raise DatasetError(f"{bmf} lists {entry!r} but {folder} has no such image")
        frames.append(by_stem[stem])
    return frames


@dataclass(frozen=True)
class _DefEntry:
    """One annotated frame of a Def.dat: 0-based frame number, mask file, input frame stem."""

    frame: int
    path: Path
    input_stem: str


def _parse_def_dat(path: Path) -> tuple[list[int], list[_DefEntry]]:
    """Region scales (grey or packed 0xRRGGBB) and annotated frames of a <seq>Def.dat."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    scales: list[int] = []
    entries: list[_DefEntry] = []
    frame: int | None = None
    file_name: str | None = None
    try:
        for i, line in enumerate(lines):
            value = lines[i + 1] if i + 1 < len(lines) else ""
            if line.startswith("Scale of region"):
                scales.append(int(value))
            elif line.startswith("Frame number"):
                frame = int(value)
            elif line.startswith("File name"):
                file_name = value
            elif line.startswith("Input file name"):
                if frame is None or file_name is None:
                    raise ValueError("'Input file name' before 'Frame number'/'File name'")
                entries.append(
                    _DefEntry(frame, path.parent / Path(file_name).name, Path(value).stem)
                )
                frame = file_name = None
    except ValueError as err:
        raise DatasetError(f"cannot parse FBMS definition file {path}: {err}") from err
    return scales, entries


def _def_dat_ground_truth(
    def_dat: Path, frames: list[Path]
) -> tuple[dict[int, Path], int | None]:
    """Frame index -> mask file, and the background scale (region 0), from a Def.dat."""
    scales, entries = _parse_def_dat(def_dat)
    stems = {p.stem: i for i, p in enumerate(frames)}
    result: dict[int, Path] = {}
    for entry in entries:
        index = stems.get(entry.input_stem, entry.frame)
        if not 0 <= index < len(frames):
            raise DatasetError(
                f"{def_dat} annotates frame {entry.frame}, but the sequence has {len(frames)} frames"
            )
        path = entry.path
        if not path.is_file():  # Def.dat files sometimes name .ppm where .pgm lies
            options = [path.with_suffix(s) for s in FBMS_GT_SUFFIXES]
            path = next((p for p in options if p.is_file()), path)
        if index in result:
            raise DatasetError(f"{def_dat} annotates frame {index} twice")
        result[index] = path
    return result, (scales[0] if scales else None)


def _numbered_ground_truth(folder: Path, frames: list[Path]) -> dict[int, Path]:
    """Frame index -> mask file, matching the numbers in the file names (no Def.dat)."""
    name = folder.name
    numbers: dict[int, int] = {}
    for i, frame in enumerate(frames):
        number = _fbms_number(frame.stem, name)
        if number is None or number in numbers:
            raise DatasetError(f"cannot tell the frame number of {frame} uniquely")
        numbers[number] = i
    result: dict[int, Path] = {}
    for gt in _files(folder / "GroundTruth", FBMS_GT_SUFFIXES):
        if "prob" in gt.name.lower():
            continue
        number = _fbms_number(gt.stem, name)
        if number is None or number not in numbers:
            raise DatasetError(f"ground truth {gt} matches no frame of {folder}")
        if numbers[number] in result:
            raise DatasetError(f"sequence {name!r} has two ground-truth files for one frame")
        result[numbers[number]] = gt
    return result


def _fbms_sequence(folder: Path) -> VideoSequence:
    """One FBMS sequence folder: frames (bmf order) and ground truth (Def.dat or file numbers)."""
    name = folder.name
    frames = _fbms_frames(folder)
    if not frames:
        raise DatasetError(f"sequence {name!r} has no frames in {folder}")
    defs = sorted((folder / "GroundTruth").glob("*Def.dat"))
    if defs:
        gt, background = _def_dat_ground_truth(defs[0], frames)
    else:
        gt, background = _numbered_ground_truth(folder, frames), None
    if not gt:
        raise DatasetError(f"sequence {name!r} has no ground truth in {folder}/GroundTruth")
    order = sorted(gt)
    return VideoSequence(
        name=name,
        dataset="fbms",
        frames=tuple(frames),
        gt_paths=tuple(gt[i] for i in order),
        gt_frames=tuple(order),
        gt_background=background,
    )


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
        raise DatasetError(f"FBMS root {root} is not a folder")
    available = _fbms_names(root)
    if not available and any((root / s).is_dir() for s in FBMS_SETS):
        raise DatasetError(
            f"{root} holds FBMS sets, not sequences: point --root at {root / 'Testset'} or "
            f"{root / 'Trainingset'}"
        )
    return [_fbms_sequence(root / name) for name in _select(available, sequences, split, root, root)]


def load_sequence(
    dataset: str, root: str | Path, name: str, *, resolution: str = "480p"
) -> VideoSequence:
    """One sequence of `dataset` by name; an unknown name is an error listing the known ones.

    DAVIS: a sequence of `root`; FBMS: of `root` itself or of its Trainingset/ or Testset/.
    """
    root = Path(root)
    if dataset == "davis":
        known = davis_sequences(root, resolution=resolution)
        if name not in known:
            raise _missing_sequence("DAVIS", root, name, known)
        return load_davis(root, sequences=[name], resolution=resolution)[0]
    if dataset == "fbms":
        return load_fbms(fbms_set_folder(root, name), sequences=[name])[0]
    raise DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


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
    raise DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
