"""FBMS-59 on disk, with its quirks.

Frames: ``<root>/<seq>/<seq>_NN.jpg`` (2–4 digits; ``tennis`` has ``tennis000.jpg``), in the
order of ``<root>/<seq>/<seq>.bmf`` when that frame list exists (else natural file-name order).
Sparse ground truth in ``<root>/<seq>/GroundTruth/``. With a ``<seq>Def.dat`` definition file
there, it names the annotated frames and their mask files, and the scale (grey value or packed
0xRRGGBB colour) of region 0 is the background. Without one, the ground-truth files
(``<seq>_NN_gt.pgm``, ``<seq>_NNNN_gt.ppm``, ``tennisNNN.pgm`` or ``NNN_gt.png`` (FBMS-3D);
``*PROB*`` files are skipped) are matched to frames by the number in their names, grayscale files
have background 0 and colour ``.ppm`` files a white background (black counts as background too).
Either way all objects are merged into one foreground. ``<root>`` is one set folder (Trainingset
or Testset); :func:`fbms_sequences` / :func:`fbms_set_folder` also look into both sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from amp_ros.datasets.common import (
    DatasetError,
    VideoSequence,
    files_with_suffixes,
    full_scale,
    image_files,
    missing_sequence_error,
    read_image,
    select_names,
)

FBMS_GT_SUFFIXES = (".pgm", ".ppm", ".png")
FBMS_SETS = ("Trainingset", "Testset")


def read_fbms_mask(path: str | Path, background: int | None = None) -> np.ndarray:
    """FBMS ground truth as H×W bool, all objects merged.

    background: the Def.dat region-0 scale (grey value, or packed 0xRRGGBB for colour files);
    every other value is object. None: grayscale > 0; colour: neither white nor black.
    """
    image = read_image(Path(path))
    if background is not None:
        if image.ndim == 3:
            rgb = image[:, :, ::-1].astype(np.int64)  # OpenCV loads BGR
            image = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        return image != background
    if image.ndim == 3:
        white = np.all(image == full_scale(image), axis=2)
        black = np.all(image == 0, axis=2)
        return ~(white | black)
    return image > 0



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
    raise missing_sequence_error("FBMS", root, sequence, fbms_sequences(root))


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
    for gt in files_with_suffixes(folder / "GroundTruth", FBMS_GT_SUFFIXES):
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
    return [_fbms_sequence(root / name) for name in select_names(available, sequences, split, root, root)]
