"""Datasets on disk and the results layout they are scored against (no ROS, no torch).

The one dataset reader of amp_ros: the evaluation, the runner, the bag writer, training and the
demo/benchmark read frames and ground truth through it.

* :mod:`~amp_ros.datasets.common`: :class:`VideoSequence`, image files, split files;
* :mod:`~amp_ros.datasets.davis`: the DAVIS layout;
* :mod:`~amp_ros.datasets.fbms`: the FBMS-59 layout and its quirks;
* :mod:`~amp_ros.datasets.results`: ``<results>/<seq>/<frame stem>.png``, its only owner.

This facade re-exports their public names and picks a layout by name (:func:`load_dataset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from amp_ros.datasets.common import (
    IMAGE_SUFFIXES,
    DatasetError,
    VideoSequence,
    image_files,
    missing_sequence_error,
    read_frame,
    read_split,
    resolve_split,
)
from amp_ros.datasets.davis import davis_sequences, load_davis, read_davis_mask
from amp_ros.datasets.fbms import (
    FBMS_GT_SUFFIXES,
    FBMS_SETS,
    fbms_sequences,
    fbms_set_folder,
    load_fbms,
    read_fbms_mask,
)
from amp_ros.datasets.results import read_result_mask, result_path, write_mask, write_result

DATASETS = ("davis", "fbms")
"""Dataset layouts (and ground-truth conventions) this package reads."""

__all__ = [
    "DATASETS",
    "FBMS_GT_SUFFIXES",
    "FBMS_SETS",
    "IMAGE_SUFFIXES",
    "DatasetError",
    "VideoSequence",
    "davis_sequences",
    "fbms_sequences",
    "fbms_set_folder",
    "image_files",
    "load_dataset",
    "load_davis",
    "load_fbms",
    "load_sequence",
    "read_davis_mask",
    "read_fbms_mask",
    "read_frame",
    "read_result_mask",
    "read_split",
    "resolve_split",
    "result_path",
    "write_mask",
    "write_result",
]


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
            raise missing_sequence_error("DAVIS", root, name, known)
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
