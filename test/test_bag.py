"""amp-bag conversions and the bag reader, on tiny DAVIS / FBMS / video fixtures in tmp_path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from amp_ros.bag import (
    FLOW_TOPIC,
    GT_TOPIC,
    IMAGE_TOPIC,
    NAME_TOPIC,
    BagError,
    DatasetError,
    FrameBag,
    davis_to_bag,
    fbms_to_bag,
    read_frames,
    video_to_bag,
)
from amp_ros.bag.read import typestore
from amp_ros.bag.write import STAMP_START_NS
from amp_ros.flow import compute_dis_flow
from amp_ros.ros.bag_cli import main

ROOT = Path(__file__).resolve().parents[1]
H, W, N = 48, 64, 5
MakeFrame = Callable[..., np.ndarray]


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _box(t: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[10 + t : 30 + t, 12 + 2 * t : 40 + 2 * t] = 255
    return mask


def _davis(root: Path, make_frame: MakeFrame, level: str = "480p") -> Path:
    """Sequences "cat" (N frames, no mask for frame 3) and "dog" (2 frames) in DAVIS layout."""
    for seq, count in (("cat", N), ("dog", 2)):
        for t in range(count):
            rgb = make_frame(H, W, seed=1, shift=(t, 0))
            _write(root / "JPEGImages" / level / seq / f"{t:05d}.jpg", rgb[:, :, ::-1])
            if not (seq == "cat" and t == 3):
                _write(root / "Annotations" / level / seq / f"{t:05d}.png", _box(t))
    return root


def _jpeg_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_from_davis_round_trips_frames_names_stamps_and_masks(
    tmp_path: Path, make_frame: MakeFrame
) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    out = tmp_path / "bags" / "cat"
    assert main(["from-davis", "--root", str(root), "--sequence", "cat", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip

    frames = list(read_frames(out))
    assert [f.name for f in frames] == [f"{t:05d}" for t in range(N)]
    stamps = np.array([f.stamp_ns for f in frames])
    assert stamps[0] == STAMP_START_NS
    assert np.all(np.abs(np.diff(stamps) - 1e9 / 24) <= 1)
    for t, frame in enumerate(frames):
        jpeg = root / "JPEGImages" / "480p" / "cat" / f"{t:05d}.jpg"
        np.testing.assert_array_equal(frame.rgb, _jpeg_rgb(jpeg))
        assert frame.flow is None
        if t == 3:
            assert frame.gt is None
        else:
            np.testing.assert_array_equal(frame.gt, _box(t))
    with FrameBag(out) as bag:
        assert bag.sequence == "cat"
        assert bag.custom_data["amp_ros.sequence"] == "cat"
        assert bag.count(GT_TOPIC) == N - 1
        assert FLOW_TOPIC not in bag.topics


def test_from_davis_with_dis_flow(tmp_path: Path, make_frame: MakeFrame) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    written = davis_to_bag(root, "cat", tmp_path / "cat", flow="dis", fps=10)
    assert (written.frames, written.masks, written.flow) == (N, N - 1, True)

    frames = list(read_frames(written.path))
    for t, frame in enumerate(frames):
        assert frame.flow is not None
        assert frame.flow.shape == (H, W, 2)
        assert frame.flow.dtype == np.float32
        if t == 0:
            assert not frame.flow.any()
        else:
            expected = compute_dis_flow(frames[t - 1].rgb, frame.rgb)
            np.testing.assert_allclose(frame.flow, expected, atol=1e-4)
    # The content moves 1 px to the right per frame.
    assert np.median(frames[2].flow[10:-10, 10:-10, 0]) == pytest.approx(1.0, abs=0.25)
    assert np.diff([f.stamp_ns for f in frames]).tolist() == [100_000_000] * (N - 1)
    without = list(read_frames(written.path, flow=False, gt=False))
    assert all(f.flow is None and f.gt is None for f in without)


def test_bag_is_readable_by_anyreader(tmp_path: Path, make_frame: MakeFrame) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    bag = davis_to_bag(root, "dog", tmp_path / "dog", flow="dis").path
    with AnyReader([bag], default_typestore=typestore()) as reader:
        topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        assert topics == {
            IMAGE_TOPIC: ("sensor_msgs/msg/Image", 2),
            NAME_TOPIC: ("std_msgs/msg/String", 2),
            FLOW_TOPIC: ("sensor_msgs/msg/Image", 2),
            GT_TOPIC: ("sensor_msgs/msg/Image", 2),
        }
        images = [c for c in reader.connections if c.topic == IMAGE_TOPIC]
        for _, log_time, raw in reader.messages(connections=images):
            msg = reader.deserialize(raw, "sensor_msgs/msg/Image")
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            assert stamp == log_time
            assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", H, W, 3 * W)
            assert msg.header.frame_id == "camera"


def test_from_davis_all_without_resolution_level(tmp_path: Path, make_frame: MakeFrame) -> None:
    root = _davis(tmp_path / "davis", make_frame, level="")
    out = tmp_path / "bags"
    assert main(["from-davis", "--root", str(root), "--sequence", "all", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["cat", "dog"]
    assert len(list(read_frames(out / "dog"))) == 2
    # A single sequence into an existing plain directory lands in <dir>/<sequence>.
    single = tmp_path / "single"
    single.mkdir()
    assert main(["from-davis", "--root", str(root), "--sequence", "dog", "--out", str(single),
                 "--quiet"]) == 0  # fmt: skip
    assert (single / "dog" / "metadata.yaml").is_file()


def test_missing_sequence_is_a_clear_error(
    tmp_path: Path, make_frame: MakeFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    with pytest.raises(DatasetError, match=r"no sequence 'bear'; it has 2: cat, dog"):
        davis_to_bag(root, "bear", tmp_path / "bear")
    assert not (tmp_path / "bear").exists()
    status = main(["from-davis", "--root", str(root), "--sequence", "bear", "--out",
                   str(tmp_path / "x"), "--quiet"])  # fmt: skip
    assert status == 1
    assert "no sequence 'bear'" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="not a DAVIS root"):
        davis_to_bag(tmp_path / "nowhere", "cat", tmp_path / "cat")


def test_existing_bag_is_kept_unless_overwrite(tmp_path: Path, make_frame: MakeFrame) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    davis_to_bag(root, "dog", tmp_path / "out")
    with pytest.raises(BagError, match="exists already"):
        davis_to_bag(root, "dog", tmp_path / "out")
    assert davis_to_bag(root, "cat", tmp_path / "out", overwrite=True).frames == N
    (tmp_path / "plain").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        davis_to_bag(root, "dog", tmp_path / "plain", overwrite=True)


def test_from_video_image_folder(tmp_path: Path, make_frame: MakeFrame) -> None:
    folder = tmp_path / "clip"
    for t in (1, 2, 10, 11):  # natural order: 1, 2, 10, 11
        _write(folder / f"img{t}.png", make_frame(H, W, seed=t)[:, :, ::-1])
    out = tmp_path / "clip_bag"
    assert main(["from-video", "--input", str(folder), "--out", str(out), "--resize", "32x24",
                 "--max-frames", "3", "--fps", "30", "--quiet"]) == 0  # fmt: skip
    frames = list(read_frames(out))
    assert [f.name for f in frames] == ["img1", "img2", "img10"]
    expected = cv2.resize(make_frame(H, W, seed=10), (32, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(frames[2].rgb, expected)
    assert all(f.gt is None and f.flow is None for f in frames)
    assert frames[1].stamp_ns - frames[0].stamp_ns == round(1e9 / 30)


def test_from_video_file(tmp_path: Path, make_frame: MakeFrame) -> None:
    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (W, H))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG/AVI")
    for t in range(4):
        writer.write(make_frame(H, W, seed=t)[:, :, ::-1])
    writer.release()
    written = video_to_bag(video, tmp_path / "walk", flow="dis")
    frames = list(read_frames(written.path))
    assert [f.name for f in frames] == ["00000", "00001", "00002", "00003"]
    assert frames[0].rgb.shape == (H, W, 3)
    assert frames[1].stamp_ns - frames[0].stamp_ns == round(1e9 / 12)  # the video's own rate
    with pytest.raises(DatasetError, match="does not exist"):
        video_to_bag(tmp_path / "missing.mp4", tmp_path / "x")


def _fbms(root: Path, make_frame: MakeFrame, colour: bool) -> Path:
    """FBMS-59 sequence "cars9": 5 frames cars9_01..05, ground truth on frames 0 and 3.

    Grey PGM masks with a Def.dat (background region 0 = 0), or, with ``colour``, PPM masks
    with a white background and no Def.dat. Two objects each, to be merged into one foreground.
    """
    seq = root / "Trainingset" / "cars9"
    names = [f"cars9_{t:02d}" for t in range(1, N + 1)]
    for t, name in enumerate(names):
        _write(seq / f"{name}.jpg", make_frame(H, W, seed=2, shift=(t, 0))[:, :, ::-1])
    (seq / "cars9.bmf").write_text(f"{N} 1\n" + "".join(f"{n}.ppm\n" for n in names))
    gt = seq / "GroundTruth"
    for t in (0, 3):
        if colour:
            labels = np.full((H, W, 3), 255, np.uint8)
            labels[5:15, 5:15] = (0, 0, 255)
            labels[30:40, 40 + t : 50 + t] = (0, 255, 0)
            _write(gt / f"cars9_{t + 1:02d}_gt.ppm", labels)
        else:
            labels = np.zeros((H, W), np.uint8)
            labels[5:15, 5:15] = 128
            labels[30:40, 40 + t : 50 + t] = 255
            _write(gt / f"cars9_{t + 1:02d}_gt.pgm", labels)
    if colour:
        return root
    blocks = "".join(
        f"Frame number:\n{t}\nFile name:\ncars9_{t + 1:02d}_gt.pgm\n"
        f"Input file name:\ncars9_{t + 1:02d}.ppm\n"
        for t in (0, 3)
    )
    (gt / "cars9Def.dat").write_text(
        "Definition file\nTotal number of regions:\n3\nScale of region 0:\n0\n"
        "Scale of region 1:\n128\nScale of region 2:\n255\n"
        f"Total number of frames in this shot:\n{N}\nTotal number of labeled frames:\n2\n{blocks}"
    )
    return root


@pytest.mark.parametrize("colour", [False, True], ids=["pgm+Def.dat", "ppm"])
def test_from_fbms_sparse_merged_ground_truth(
    tmp_path: Path, make_frame: MakeFrame, colour: bool
) -> None:
    root = _fbms(tmp_path / "fbms", make_frame, colour)
    out = tmp_path / "out"
    assert main(["from-fbms", "--root", str(root), "--sequence", "all", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    frames = list(read_frames(out / "cars9"))
    assert [f.name for f in frames] == [f"cars9_{t:02d}" for t in range(1, N + 1)]
    assert [f.gt is not None for f in frames] == [True, False, False, True, False]
    gt = frames[3].gt
    assert gt is not None
    assert set(np.unique(gt)) == {0, 255}
    assert gt[10, 10] == 255 and gt[35, 46] == 255 and gt[0, 0] == 0
    assert int((gt > 0).sum()) == 200
    with pytest.raises(DatasetError, match=r"FBMS root .* no sequence 'cars1'; it has 1: cars9"):
        fbms_to_bag(root, "cars1", tmp_path / "c1")


def test_reader_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="does not exist"):
        FrameBag(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag: expected a directory with metadata"):
        FrameBag(tmp_path / "plain")
    store = typestore()
    other = tmp_path / "other"
    with Writer(other, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        msg = store.types["std_msgs/msg/String"](data="hi")
        writer.write(conn, 1, store.serialize_cdr(msg, "std_msgs/msg/String"))
    with pytest.raises(BagError, match=r"no topic '/camera/image_raw'; it has \['/chatter'\]"):
        list(read_frames(other))
    with pytest.raises(BagError, match=r"'/chatter' .* has type 'std_msgs/msg/String', expected"):
        FrameBag(other, image_topic="/chatter")


def test_info_and_module_entry_point(tmp_path: Path, make_frame: MakeFrame) -> None:
    root = _davis(tmp_path / "davis", make_frame)
    bag = davis_to_bag(root, "dog", tmp_path / "dog").path
    result = subprocess.run(
        [sys.executable, "-m", "amp_ros.ros.bag_cli", "info", str(bag)],
        capture_output=True, text=True, check=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert "sequence 'dog', 2 frames" in result.stdout
    assert "/ground_truth/mask" in result.stdout and "amp_ros.source = davis" in result.stdout


# --- CompressedImage frames (image_transport's compressed plugin) ----------------------------------

COMPRESSED = "sensor_msgs/msg/CompressedImage"


def _camera_bag(path: Path, frames: list[tuple[str, bytes]], storage: StoragePlugin) -> list[int]:
    """A bag as a camera driver + image_transport + ``ros2 bag record`` leave it, written with the
    rosbags library directly: CompressedImage on /camera/image_raw/compressed, no frame names,
    log times a little after the header stamps. Returns the header stamps."""
    store = typestore()
    types = store.types
    stamps = [1_750_000_000_000_000_000 + k * 33_333_333 for k in range(len(frames))]
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conn = writer.add_connection(IMAGE_TOPIC + "/compressed", COMPRESSED, typestore=store)
        for stamp, (fmt, data) in zip(stamps, frames):
            sec, nanosec = divmod(stamp, 1_000_000_000)
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                frame_id="camera_optical")
            msg = types[COMPRESSED](header=header, format=fmt, data=np.frombuffer(data, np.uint8))
            writer.write(conn, stamp + 2_000_000, store.serialize_cdr(msg, COMPRESSED))
    return stamps


def _png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()


def _jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _decoded_jpeg(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_compressed_camera_bag_reads_like_a_raw_one(
    tmp_path: Path, make_frame: MakeFrame, storage: StoragePlugin
) -> None:
    """A recorded bag of CompressedImage (png and jpeg, old and new format strings) is found
    under the default image topic (+ "/compressed") and decodes to the frames."""
    rgbs = [make_frame(H, W, seed=2, shift=(t, 0)) for t in range(4)]
    jpeg = _jpeg(rgbs[3])
    stamps = _camera_bag(tmp_path / "cam", [
        ("rgb8; png compressed bgr8", _png(rgbs[0])), ("png", _png(rgbs[1])),
        ("bgr8; png compressed bgr8", _png(rgbs[2])), ("jpeg", jpeg)], storage)  # fmt: skip
    with FrameBag(tmp_path / "cam") as bag:
        assert bag.image_topic == IMAGE_TOPIC + "/compressed" and bag.compressed and len(bag) == 4
        frames = list(bag.frames())
    assert [f.stamp_ns for f in frames] == stamps
    assert [f.name for f in frames] == ["00000", "00001", "00002", "00003"]
    for frame, rgb in zip(frames[:3], rgbs):
        assert frame.rgb.dtype == np.uint8 and np.array_equal(frame.rgb, rgb)  # png: lossless
    assert np.array_equal(frames[3].rgb, _decoded_jpeg(jpeg))  # jpeg: OpenCV's decode of it
    assert all(f.flow is None and f.gt is None for f in frames)


def test_corrupt_compressed_frame_is_a_clear_error(tmp_path: Path, make_frame: MakeFrame) -> None:
    """A truncated PNG in a bag is a BagError naming the frame and the problem."""
    good = _png(make_frame(H, W, seed=2))
    _camera_bag(tmp_path / "cam", [("png", good), ("png", good[: len(good) // 2])],
                StoragePlugin.MCAP)  # fmt: skip
    frames = read_frames(tmp_path / "cam")
    assert next(frames).name == "00000"
    with pytest.raises(BagError, match=r"image of frame '00001': could not decode .* corrupt"):
        next(frames)


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_from_davis_with_compressed_frames(
    tmp_path: Path, make_frame: MakeFrame, image_format: str
) -> None:
    """amp-bag from-davis --image-format png|jpeg writes CompressedImage frames that read back
    (png exactly) with their names, stamps and masks; `info` lists the compressed topic."""
    root = _davis(tmp_path / "davis", make_frame)
    out = tmp_path / "cat"
    assert main(["from-davis", "--root", str(root), "--sequence", "cat", "--out", str(out),
                 "--image-format", image_format, "--quiet"]) == 0  # fmt: skip
    raw = davis_to_bag(root, "cat", tmp_path / "cat_raw")
    with FrameBag(out) as bag:
        assert bag.topics[IMAGE_TOPIC + "/compressed"] == COMPRESSED and IMAGE_TOPIC not in bag.topics
    frames, raw_frames = list(read_frames(out)), list(read_frames(raw.path))
    assert [(f.name, f.stamp_ns) for f in frames] == [(f.name, f.stamp_ns) for f in raw_frames]
    for frame, expected in zip(frames, raw_frames):
        if image_format == "png":
            np.testing.assert_array_equal(frame.rgb, expected.rgb)
        else:  # what image_transport's jpeg_quality 95 gives back
            np.testing.assert_array_equal(frame.rgb, _decoded_jpeg(_jpeg(expected.rgb)))
        assert (frame.gt is None) == (expected.gt is None)
    with pytest.raises(ValueError, match=r"image_format must be one of \['raw', 'jpeg', 'png'\]"):
        davis_to_bag(root, "cat", tmp_path / "x", image_format="webp")
