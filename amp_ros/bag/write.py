"""Convert DAVIS, FBMS-59, video files and image folders into rosbag2 (MCAP) bags, without ROS.

Every bag holds, per frame and all with the same stamp (header stamp = log time):

* ``/camera/image_raw``  sensor_msgs/Image rgb8, frame_id "camera";
* ``/camera/frame_name`` std_msgs/String, the source frame name (e.g. "00000"), so that results
  can be written under the same names;
* ``/camera/flow``       sensor_msgs/Image 32FC2 (with ``flow="dis"``): OpenCV DIS flow from the
  previous frame to this one in pixels (dx, dy); the first frame gets zero flow;
* ``/ground_truth/mask`` sensor_msgs/Image mono8 0/255, only at annotated frames.

Stamps start at a fixed time (:data:`STAMP_START_NS`) and grow by 1/fps. The metadata
custom_data holds ``amp_ros.sequence``, ``amp_ros.source`` and ``amp_ros.fps``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from tqdm import tqdm

from amp_ros.bag.read import (
    FLOW_TOPIC,
    FPS_KEY,
    FRAME_ID,
    GT_TOPIC,
    IMAGE_TOPIC,
    IMAGE_TYPE,
    NAME_TOPIC,
    SEQUENCE_KEY,
    SOURCE_KEY,
    STRING_TYPE,
    BagError,
    typestore,
)
from amp_ros.errors import AmpError
from amp_ros.image_codec import array_to_fields

if TYPE_CHECKING:
    from rosbags.interfaces import Connection

STAMP_START_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z, fixed for repeatability
DEFAULT_FPS = 24.0
FLOW_METHODS = ("none", "dis")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DatasetError(AmpError):
    """A dataset root, sequence, frame or annotation is missing or malformed."""


@dataclass(frozen=True)
class SourceFrame:
    """A frame to convert: its name, an RGB H×W×3 uint8 image and a mono8 0/255 mask or None."""

    name: str
    rgb: np.ndarray
    gt: np.ndarray | None = None


@dataclass(frozen=True)
class WrittenBag:
    """What :func:`write_bag` wrote."""

    path: Path
    sequence: str
    frames: int
    masks: int
    flow: bool
    seconds: float

    @property
    def size_bytes(self) -> int:
        """The bag's size on disk."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())


def frame_stamp_ns(index: int, fps: float) -> int:
    """The stamp of frame ``index`` at ``fps``: STAMP_START_NS + index/fps seconds."""
    return STAMP_START_NS + round(index * 1_000_000_000 / fps)


class _BagWriter:
    """Writes frames as messages; topics are added on first use."""

    def __init__(self, path: Path, *, sequence: str, source: str, fps: float) -> None:
        self._store = typestore()
        self._writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_custom_data(SEQUENCE_KEY, sequence)
        self._writer.set_custom_data(SOURCE_KEY, source)
        self._writer.set_custom_data(FPS_KEY, repr(float(fps)))
        self._connections: dict[str, Connection] = {}
        self._types = self._store.types

    def __enter__(self) -> _BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Connection:
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self._store
            )
        return self._connections[topic]

    def _header(self, stamp: int) -> Any:
        time_msg = self._types["builtin_interfaces/msg/Time"](
            sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000
        )
        return self._types["std_msgs/msg/Header"](stamp=time_msg, frame_id=FRAME_ID)

    def image(self, topic: str, stamp: int, array: np.ndarray, encoding: str) -> None:
        """Write ``array`` as a sensor_msgs/Image with ``encoding`` on ``topic``."""
        fields = array_to_fields(array, encoding)
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        msg = self._types[IMAGE_TYPE](header=self._header(stamp), **fields)
        raw = self._store.serialize_cdr(msg, IMAGE_TYPE)
        self._writer.write(self._connection(topic, IMAGE_TYPE), stamp, raw)

    def string(self, topic: str, stamp: int, text: str) -> None:
        """Write ``text`` as a std_msgs/String on ``topic``, logged at ``stamp``."""
        raw = self._store.serialize_cdr(self._types[STRING_TYPE](data=text), STRING_TYPE)
        self._writer.write(self._connection(topic, STRING_TYPE), stamp, raw)


def _check_frame(frame: SourceFrame, shape: tuple[int, ...] | None) -> None:
    rgb = frame.rgb
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DatasetError(
            f"frame {frame.name!r} must be H×W×3 uint8 RGB, got {rgb.dtype} {rgb.shape}"
        )
    if shape is not None and rgb.shape != shape:
        raise DatasetError(
            f"frame {frame.name!r} has shape {rgb.shape}, expected {shape} like the first frame"
        )
    if frame.gt is not None and frame.gt.shape != rgb.shape[:2]:
        raise DatasetError(
            f"mask of frame {frame.name!r} has shape {frame.gt.shape}, "
            f"expected {rgb.shape[:2]} like the frame"
        )


def write_bag(
    out: str | Path,
    frames: Iterable[SourceFrame],
    *,
    sequence: str,
    source: str,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    total: int | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> WrittenBag:
    """Write ``frames`` into a new MCAP bag at ``out`` (see the module docstring for topics)."""
    out = Path(out)
    if flow not in FLOW_METHODS:
        raise ValueError(f"flow must be one of {list(FLOW_METHODS)}, got {flow!r}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out.exists():
        if not overwrite:
            raise BagError(f"{str(out)!r} exists already; remove it or pass overwrite=True")
        if not (out / "metadata.yaml").is_file():
            raise BagError(f"refusing to overwrite {str(out)!r}: it is not a rosbag2 bag")
        shutil.rmtree(out)
    compute_flow = None
    if flow == "dis":
        from amp_ros.flow import compute_dis_flow as compute_flow

    start = time.perf_counter()
    count = masks = 0
    try:
        with _BagWriter(out, sequence=sequence, source=source, fps=fps) as writer:
            prev: np.ndarray | None = None
            shape: tuple[int, ...] | None = None
            bar = tqdm(frames, total=total, desc=sequence, unit="frame", disable=not progress)
            for frame in bar:
                _check_frame(frame, shape)
                shape = frame.rgb.shape
                stamp = frame_stamp_ns(count, fps)
                writer.image(IMAGE_TOPIC, stamp, frame.rgb, "rgb8")
                writer.string(NAME_TOPIC, stamp, frame.name)
                if compute_flow is not None:
                    if prev is None:
                        field = np.zeros((*shape[:2], 2), np.float32)
                    else:
                        field = compute_flow(prev, frame.rgb)
                    writer.image(FLOW_TOPIC, stamp, field, "32FC2")
                    prev = frame.rgb
                if frame.gt is not None:
                    gt = np.where(frame.gt > 0, 255, 0).astype(np.uint8)
                    writer.image(GT_TOPIC, stamp, gt, "mono8")
                    masks += 1
                count += 1
            if count == 0:
                raise DatasetError(f"sequence {sequence!r} has no frames")
    except WriterError as err:
        shutil.rmtree(out, ignore_errors=True)
        raise BagError(f"cannot write bag {str(out)!r}: {err}") from err
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return WrittenBag(out, sequence, count, masks, flow != "none", time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Image files


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def read_rgb(path: Path) -> np.ndarray:
    """Load an image file as H×W×3 uint8 RGB; raises DatasetError if it cannot be decoded."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {str(path)!r}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Load an annotation as an H×W uint8 mask: 255 where any object is, 0 elsewhere."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DatasetError(f"cannot read mask {str(path)!r}")
    if pixels.ndim == 3:
        pixels = pixels[:, :, :3].max(axis=2)
    return np.where(pixels > 0, 255, 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# DAVIS: JPEGImages/[480p/]<seq>/NNNNN.jpg, Annotations/[480p/]<seq>/NNNNN.png


def _davis_dir(root: Path, kind: str) -> Path:
    base = root / kind
    return base / "480p" if (base / "480p").is_dir() else base


def davis_sequences(root: str | Path) -> list[str]:
    """The sequence names of a DAVIS root (JPEGImages/480p/<seq> or JPEGImages/<seq>)."""
    root = Path(root)
    images = _davis_dir(root, "JPEGImages")
    if not images.is_dir():
        raise DatasetError(
            f"{str(root)!r} is not a DAVIS root: expected {str(root / 'JPEGImages')!r}"
        )
    return sorted(p.name for p in images.iterdir() if p.is_dir() and _image_files(p))


def _missing_sequence(kind: str, root: Path, sequence: str, known: list[str]) -> DatasetError:
    shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
    return DatasetError(
        f"{kind} root {str(root)!r} has no sequence {sequence!r}; "
        f"it has {len(known)}: {shown or 'none'}"
    )


def davis_frames(root: str | Path, sequence: str) -> list[tuple[str, Path, Path | None]]:
    """(name, image path, annotation path or None) for every frame of a DAVIS sequence."""
    root = Path(root)
    known = davis_sequences(root)
    if sequence not in known:
        raise _missing_sequence("DAVIS", root, sequence, known)
    images = _image_files(_davis_dir(root, "JPEGImages") / sequence)
    annotations = _davis_dir(root, "Annotations") / sequence
    result = []
    for image in images:
        mask = annotations / f"{image.stem}.png"
        result.append((image.stem, image, mask if mask.is_file() else None))
    return result


def _load(items: list[tuple[str, Path, Path | None]]) -> Iterator[SourceFrame]:
    for name, image, mask in items:
        yield SourceFrame(name, read_rgb(image), read_mask(mask) if mask is not None else None)


def davis_to_bag(
    root: str | Path,
    sequence: str,
    out: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
) -> WrittenBag:
    """Convert one DAVIS sequence (frames and ground-truth masks) into a bag at ``out``."""
    items = davis_frames(root, sequence)
    return write_bag(
        out,
        _load(items),
        sequence=sequence,
        source="davis",
        fps=fps,
        flow=flow,
        total=len(items),
        progress=progress,
        overwrite=overwrite,
    )


# ---------------------------------------------------------------------------------------------
# FBMS-59: [Trainingset|Testset/]<seq>/<seq>_NN.jpg, <seq>.bmf (frame list),
# <seq>/GroundTruth/<seq>Def.dat + sparse .pgm/.ppm masks (region 0 = background)

_FBMS_SETS = ("", "Trainingset", "Testset")


def fbms_sequences(root: str | Path) -> list[str]:
    """The sequence names under an FBMS-59 root (itself, Trainingset/ and Testset/)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"FBMS root {str(root)!r} is not a directory")
    names = set()
    for sub in _FBMS_SETS:
        folder = root / sub
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if p.is_dir() and _image_files(p))
    return sorted(names)


def _fbms_dir(root: Path, sequence: str) -> Path:
    for sub in _FBMS_SETS:
        folder = root / sub / sequence
        if folder.is_dir() and _image_files(folder):
            return folder
    raise _missing_sequence("FBMS", root, sequence, fbms_sequences(root))


def _fbms_images(folder: Path) -> list[Path]:
    bmf = folder / f"{folder.name}.bmf"
    by_stem = {p.stem: p for p in _image_files(folder)}
    if not bmf.is_file():
        return list(by_stem.values())
    listed = bmf.read_text().split()[2:]  # header: "<frames> <views>"
    images = []
    for entry in listed:
        stem = Path(entry).stem
        if stem not in by_stem:
            raise DatasetError(f"{str(bmf)!r} lists {entry!r} but {folder} has no such image")
        images.append(by_stem[stem])
    return images


@dataclass(frozen=True)
class _FbmsAnnotation:
    frame: int  # 0-based index into the frame list
    path: Path
    input_stem: str


def _parse_def_dat(path: Path) -> tuple[list[int], list[_FbmsAnnotation]]:
    """Region scales (grey or packed 0xRRGGBB) and annotated frames of a <seq>Def.dat."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    scales: list[int] = []
    annotations: list[_FbmsAnnotation] = []
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
                annotations.append(
                    _FbmsAnnotation(frame, path.parent / Path(file_name).name, Path(value).stem)
                )
                frame = file_name = None
    except ValueError as err:
        raise DatasetError(f"cannot parse FBMS definition file {str(path)!r}: {err}") from err
    return scales, annotations


def _trailing_number(stem: str) -> int | None:
    match = re.search(r"(\d+)(?:_gt)?$", stem)
    return int(match.group(1)) if match else None


def _fbms_annotations(
    folder: Path, images: list[Path]
) -> tuple[dict[int, Path], tuple[int, ...] | None]:
    """Frame index -> annotation path, and the background colour (None: guess per file)."""
    gt_dir = folder / "GroundTruth"
    if not gt_dir.is_dir():
        return {}, None
    stems = {p.stem: i for i, p in enumerate(images)}
    defs = sorted(gt_dir.glob("*Def.dat"))
    if defs:
        scales, annotations = _parse_def_dat(defs[0])
        result = {}
        for ann in annotations:
            index = stems.get(ann.input_stem, ann.frame)
            if not 0 <= index < len(images):
                raise DatasetError(
                    f"{str(defs[0])!r} annotates frame {ann.frame}, "
                    f"but the sequence has {len(images)} frames"
                )
            path = ann.path
            if not path.is_file():  # Def.dat files sometimes name .ppm where .pgm lies
                options = [path.with_suffix(s) for s in (".pgm", ".ppm", ".png")]
                path = next((p for p in options if p.is_file()), path)
            result[index] = path
        return result, ((scales[0],) if scales else None)
    numbers = {_trailing_number(p.stem): i for i, p in enumerate(images)}
    result = {}
    for path in sorted(gt_dir.iterdir()):
        if path.suffix.lower() not in (".pgm", ".ppm", ".png") or "PROB" in path.name:
            continue
        number = _trailing_number(path.stem)
        if number in numbers:
            result[numbers[number]] = path
    return result, None


def _fbms_mask(path: Path, background: tuple[int, ...] | None) -> np.ndarray:
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DatasetError(f"cannot read FBMS annotation {str(path)!r}")
    if pixels.ndim == 3:
        rgb = cv2.cvtColor(pixels[:, :, :3], cv2.COLOR_BGR2RGB).astype(np.int64)
        packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        # Without a Def.dat, colour (PPM) annotations have a white background.
        bg = background[0] if background is not None else 0xFFFFFF
        foreground = packed != bg
    else:
        bg = background[0] if background is not None else 0
        foreground = pixels != bg
    return np.where(foreground, 255, 0).astype(np.uint8)


def fbms_to_bag(
    root: str | Path,
    sequence: str,
    out: str | Path,
    *,
    fps: float = DEFAULT_FPS,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
) -> WrittenBag:
    """Convert one FBMS-59 sequence into a bag; all objects of the sparse masks are foreground."""
    folder = _fbms_dir(Path(root), sequence)
    images = _fbms_images(folder)
    annotations, background = _fbms_annotations(folder, images)

    def frames() -> Iterator[SourceFrame]:
        for index, image in enumerate(images):
            ann = annotations.get(index)
            gt = _fbms_mask(ann, background) if ann is not None else None
            yield SourceFrame(image.stem, read_rgb(image), gt)

    return write_bag(
        out,
        frames(),
        sequence=sequence,
        source="fbms",
        fps=fps,
        flow=flow,
        total=len(images),
        progress=progress,
        overwrite=overwrite,
    )


# ---------------------------------------------------------------------------------------------
# Users' recordings: a video file or a folder of images


def _resized(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _video_frames(path: Path, max_frames: int | None) -> tuple[Iterator[SourceFrame], float, int]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DatasetError(f"cannot open video {str(path)!r} (not a video OpenCV can decode?)")
    native_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if max_frames is not None:
        count = min(count, max_frames) if count > 0 else max_frames

    def frames() -> Iterator[SourceFrame]:
        try:
            index = 0
            while max_frames is None or index < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield SourceFrame(f"{index:05d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()

    return frames(), native_fps, count


def video_to_bag(
    source: str | Path,
    out: str | Path,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    resize: tuple[int, int] | None = None,
    flow: str = "none",
    progress: bool = False,
    overwrite: bool = False,
) -> WrittenBag:
    """Convert a video file or an image folder into a bag (no ground truth).

    Frame names are the image file stems, or NNNNN for a video; ``fps`` defaults to the video's
    own rate (24 for a folder); ``resize`` is (width, height).
    """
    source = Path(source)
    if max_frames is not None and max_frames <= 0:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    if resize is not None and (len(resize) != 2 or min(resize) <= 0):
        raise ValueError(f"resize must be (width, height) with positive sizes, got {resize}")
    if source.is_dir():
        files = _image_files(source)[:max_frames]
        if not files:
            raise DatasetError(
                f"folder {str(source)!r} has no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        frames: Iterator[SourceFrame] = (SourceFrame(p.stem, read_rgb(p)) for p in files)
        native_fps, total = 0.0, len(files)
    elif source.is_file():
        frames, native_fps, total = _video_frames(source, max_frames)
    else:
        raise DatasetError(f"input {str(source)!r} does not exist")
    rate = fps if fps is not None else (native_fps if native_fps > 0 else DEFAULT_FPS)
    resized = (SourceFrame(f.name, _resized(f.rgb, resize)) for f in frames)
    sequence = source.stem if source.is_file() else source.name
    return write_bag(
        out,
        resized,
        sequence=sequence,
        source="video",
        fps=rate,
        flow=flow,
        total=total or None,
        progress=progress,
        overwrite=overwrite,
    )
