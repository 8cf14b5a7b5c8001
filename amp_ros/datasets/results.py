"""The results layout: one mask per frame at ``<results>/<seq>/<frame stem>.png``.

The only owner of that layout: the offline runner and the bag replay write it, the scorer and the
demo read it. For DAVIS the names are those of the annotations. Masks are written as 0/255
grayscale PNGs, atomically (a reader never sees a half-written file); when read, any nonzero
pixel is object.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from amp_ros.atomic_write import atomic_write
from amp_ros.datasets.common import DatasetError, VideoSequence, read_image

RESULT_SUFFIX = ".png"


def result_path(results_dir: str | Path, sequence: str, frame: str) -> Path:
    """Where the mask of frame ``frame`` (its file stem) of ``sequence`` lives."""
    return Path(results_dir) / sequence / f"{frame}{RESULT_SUFFIX}"


def sequence_result_path(results_dir: str | Path, sequence: VideoSequence, index: int) -> Path:
    """Where the mask of frame ``index`` of ``sequence`` lives: named after its frame's stem."""
    return result_path(results_dir, sequence.name, sequence.frames[index].stem)


def read_result_mask(path: str | Path) -> np.ndarray:
    """Result mask as H×W bool: any nonzero pixel (any channel) is object."""
    image = read_image(Path(path))
    if image.ndim == 3:
        return np.any(image > 0, axis=2)
    return image > 0


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write an H×W binary mask as a 0/255 grayscale PNG, atomically (creating folders)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DatasetError(f"write_mask expects an H×W mask, got shape {mask.shape}")
    ok, png = cv2.imencode(RESULT_SUFFIX, np.where(mask.astype(bool), 255, 0).astype(np.uint8))
    if not ok:
        raise OSError(f"could not encode mask {path}")
    return atomic_write(path, png.tobytes())




def write_result(
    results_dir: str | Path, sequence: VideoSequence, index: int, mask: np.ndarray
) -> Path:
    """Write the mask of frame ``index`` of ``sequence`` into the results layout."""
    return write_mask(sequence_result_path(results_dir, sequence, index), mask)
