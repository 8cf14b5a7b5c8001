"""Scoring, dataset readers, reports and the `amp-eval score` CLI on tiny fixtures in tmp_path."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from amp_ros.datasets import load_davis, load_fbms, read_split
from amp_ros.datasets.results import sequence_result_path
from amp_ros.errors import InputError
from amp_ros.eval_cli import main
from amp_ros.evaluation import (
    RegionScores,
    Stats,
    build_metrics,
    pool_runs,
    score_sequence,
    scored_positions,
    summarise,
)
from amp_ros.evaluation.report import write_metrics_json
from amp_ros.evaluation.scoring import SequenceScores, evaluate_results

H, W = 24, 32


def _blob(t: int) -> np.ndarray:
    """H×W uint8 0/255 mask of a box that moves with t."""
    m = np.zeros((H, W), np.uint8)
    m[4 + t : 14 + t, 6 + 2 * t : 18 + 2 * t] = 255
    return m


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def _davis_fixture(root: Path, level: str = "480p", frames: int = 5) -> Path:
    """Two DAVIS sequences of `frames` frames each (with or without the resolution level)."""
    for seq in ("alpha", "beta"):
        for t in range(frames):
            name = f"{t:05d}"
            frame = np.full((H, W, 3), 90, np.uint8)
            _write(root / "JPEGImages" / level / seq / f"{name}.jpg", frame)
            _write(root / "Annotations" / level / seq / f"{name}.png", _blob(t))
    return root


def _copy_annotations_as_results(root: Path, results: Path, level: str = "480p") -> Path:
    shutil.copytree(root / "Annotations" / level, results)
    return results


def test_import_loads_neither_matplotlib_nor_torch() -> None:
    """Scoring and the CLI start fast: plots and the network are imported on use (no ROS at all:
    test_import_boundary)."""
    code = (
        "import sys, amp_ros.evaluation, amp_ros.eval_cli, amp_ros.runner; "
        "print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- score_sequence / summarise -----------------------------------------------------------------


def test_scored_positions() -> None:
    assert scored_positions(5) == [1, 2, 3]
    assert scored_positions(3) == [1]
    assert scored_positions(2) == [0, 1]  # nothing would be left: all frames are scored
    assert scored_positions(1) == [0]
    assert scored_positions(4, "fbms") == [0, 1, 2, 3]
    with pytest.raises(InputError, match="unknown protocol 'x'"):
        scored_positions(4, "x")


def test_given_frames_are_not_scored() -> None:
    """The teach protocol's k given frames are left out; DAVIS drops frame 0 anyway."""
    assert scored_positions(8, given=1) == [1, 2, 3, 4, 5, 6]
    assert scored_positions(8, given=5) == [5, 6]
    assert scored_positions(4, "fbms", given=2) == [2, 3]
    with pytest.raises(InputError, match="no frame left to score: 5 annotated, the first 4 given"):
        scored_positions(5, given=4)


def test_score_sequence_drops_first_and_last_frame() -> None:
    gts = [_blob(t) for t in range(5)]
    empty = np.zeros((H, W), bool)
    preds = [empty, *gts[1:4], empty]
    scores = score_sequence(preds, gts)
    assert scores.frames == 3
    assert scores.frame_indices == (1, 2, 3)
    assert scores.J == Stats(1.0, 1.0, 0.0)
    assert scores.F == Stats(1.0, 1.0, 0.0)
    assert scores.region is None


def test_score_sequence_hand_values() -> None:
    gts = [_blob(0)] * 6  # 10×12 box = 120 px
    half = _blob(0).copy()
    half[:, 12:] = 0  # keeps 10×6 = 60 px → J = 0.5 (not counted by Recall: not > 0.5)
    preds = [gts[0], gts[0], gts[0], half, half, gts[0]]
    scores = score_sequence(preds, gts)
    assert scores.J_per_frame == (1.0, 1.0, 0.5, 0.5)
    assert scores.J.mean == pytest.approx(0.75)
    assert scores.J.recall == pytest.approx(0.5)
    assert scores.J.decay == pytest.approx(0.5)  # L=4: mean(1, 1) - mean(0.5, 0.5)


def test_score_sequence_fbms_protocol_scores_every_frame() -> None:
    gt = np.zeros((4, 4), bool)
    gt[:2, :] = True
    pred = np.zeros((4, 4), bool)
    pred[1:3, :2] = True
    scores = score_sequence([pred, gt], [gt, gt], protocol="fbms", frame_indices=[0, 20])
    assert scores.frame_indices == (0, 20)
    assert scores.precision_per_frame == (0.5, 1.0)
    assert scores.recall_per_frame == (0.25, 1.0)
    assert scores.region is not None
    assert scores.region.precision == pytest.approx(0.75)
    assert scores.region.recall == pytest.approx(0.625)
    assert scores.region.f == pytest.approx(2 * 0.75 * 0.625 / 1.375)


def test_score_sequence_rejects_mismatched_lists() -> None:
    with pytest.raises(InputError, match="2 predicted masks but 3 ground-truth masks"):
        score_sequence([_blob(0)] * 2, [_blob(0)] * 3)


def test_summarise_means_over_sequences() -> None:
    def seq(j: Stats, f: Stats) -> SequenceScores:
        return SequenceScores(J=j, F=f, J_per_frame=(j.mean,), F_per_frame=(f.mean,),
                              frame_indices=(1,))

    summary = summarise({
        "a": seq(Stats(0.8, 1.0, 0.1), Stats(0.6, 1.0, 0.0)),
        "b": seq(Stats(0.4, 0.0, -0.1), Stats(0.2, 0.0, 0.2)),
    })
    assert summary.J.mean == pytest.approx(0.6)
    assert summary.J.recall == pytest.approx(0.5)
    assert summary.J.decay == pytest.approx(0.0)
    assert summary.F.mean == pytest.approx(0.4)
    assert summary.JF == pytest.approx(0.5)
    assert summary.sequences == 2
    with pytest.raises(InputError, match="at least one"):
        summarise({})


def _seq(j: Stats, f: Stats) -> SequenceScores:
    return SequenceScores(J=j, F=f, J_per_frame=(j.mean,), F_per_frame=(f.mean,), frame_indices=(1,))


def _fold(**sequences: tuple[Stats, Stats]) -> dict:
    """A metrics.json dict of one fold: its sequences' scores and their summary."""
    scores = {name: _seq(j, f) for name, (j, f) in sequences.items()}
    return build_metrics("davis", scores, summarise(scores), fps=2.0)


def test_scores_read_back_from_metrics_json_are_the_same() -> None:
    scores = SequenceScores(J=Stats(0.5, 1.0, 0.25), F=Stats(0.75, 0.5, 0.0), J_per_frame=(0.5, 0.5),
                            F_per_frame=(1.0, 0.5), frame_indices=(1, 2),
                            region=RegionScores(0.5, 1.0, 2 / 3), precision_per_frame=(0.5, 0.5),
                            recall_per_frame=(1.0, 1.0))
    assert SequenceScores.from_dict(json.loads(json.dumps(scores.to_dict()))) == scores


def test_pooled_folds_are_the_means_over_all_their_sequences() -> None:
    # Fold a: two sequences (J 0.25, 0.75); fold b: one (J 1.0). Pooled J = (0.25+0.75+1)/3 = 2/3,
    # not the mean of the folds' means (0.5 and 1.0 → 0.75): every sequence weighs the same.
    a = _fold(s1=(Stats(0.25, 0.0, 0.5), Stats(0.5, 1.0, 0.0)),
              s2=(Stats(0.75, 1.0, 0.0), Stats(0.5, 0.0, 0.0)))
    b = _fold(s3=(Stats(1.0, 1.0, 0.25), Stats(0.25, 1.0, 0.0)))
    pooled = pool_runs({"a": a, "b": b})
    assert set(pooled["sequences"]) == {"s1", "s2", "s3"}
    assert pooled["global"]["J"] == pytest.approx({"mean": 2 / 3, "recall": 2 / 3, "decay": 0.25})
    assert pooled["global"]["F"]["mean"] == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    assert pooled["global"]["JF"] == pytest.approx((2 / 3 + 1.25 / 3) / 2)
    assert pooled["global"]["sequences"] == 3
    assert pooled["config"] == {"pooled": ["a", "b"]} and pooled["fps"] is None
    with pytest.raises(InputError, match="'s3' is in more than one pooled run"):
        pool_runs({"a": a, "b": b, "again": b})


def test_compare_pools_folds_and_states_their_spread(tmp_path: Path) -> None:
    # Fold means 0.5 and 1.0: mean 0.75, sample standard deviation |1.0 - 0.5| / sqrt(2) = 0.354.
    folds = {"a": _fold(s1=(Stats(0.5, 1.0, 0.0), Stats(0.5, 1.0, 0.0))),
             "b": _fold(s2=(Stats(1.0, 1.0, 0.0), Stats(1.0, 1.0, 0.0)))}
    for label, metrics in folds.items():
        write_metrics_json(tmp_path / label, metrics)
    table = tmp_path / "table.md"
    assert main(["compare", f"fold a={tmp_path / 'a'}", f"fold b={tmp_path / 'b'}", "--pooled", "both",
                 "--out", str(table)]) == 0
    text = table.read_text()
    assert "| both | 0.750 | 0.750 | 1.000 | 0.000 | 0.750 | 1.000 | 0.000 | – |" in text
    assert ("J mean of the 2 runs: mean 0.750, lowest 0.500 (fold a), highest 1.000 (fold b), "
            "standard deviation 0.354.") in text
    assert main(["compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'a'}", "--pooled", "both"]) == 1
    assert main(["compare", f"a={tmp_path / 'a'}", f"a={tmp_path / 'b'}"]) == 1


def test_compare_pools_each_rows_folders_and_tabulates_their_j(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Row "as is": fold a J 0.5 (s1), fold b J 1.0 (s2) → pooled J 0.75; row "changed": 0.25 and
    # 0.5 → pooled 0.375. The second table gives each folder's J under the first row's names.
    metrics = {"a": _fold(s1=(Stats(0.5, 1.0, 0.0), Stats(0.5, 1.0, 0.0))),
               "b": _fold(s2=(Stats(1.0, 1.0, 0.0), Stats(1.0, 1.0, 0.0))),
               "a-changed": _fold(s1=(Stats(0.25, 0.0, 0.0), Stats(0.5, 1.0, 0.0))),
               "b-changed": _fold(s2=(Stats(0.5, 1.0, 0.0), Stats(1.0, 1.0, 0.0))),
               "c": _fold(s3=(Stats(0.5, 1.0, 0.0), Stats(0.5, 1.0, 0.0)))}
    for label, data in metrics.items():
        write_metrics_json(tmp_path / label, data)
    table = tmp_path / "table.md"
    assert main(["compare", f"as is={tmp_path / 'a'},{tmp_path / 'b'}",
                 f"changed={tmp_path / 'a-changed'},{tmp_path / 'b-changed'}", "--out", str(table)]) == 0
    text = table.read_text()
    assert "| as is | 0.750 | 0.750 | 1.000 | 0.000 | 0.750 | 1.000 | 0.000 | – |" in text
    assert "| changed | 0.562 | 0.375 | 0.500 | 0.000 | 0.750 | 1.000 | 0.000 | – |" in text
    assert ("| run | a | b |\n| --- | ---: | ---: |\n| as is | 0.500 | 1.000 |\n"
            "| changed | 0.250 | 0.500 |") in text
    assert f"`{tmp_path / 'a' / 'metrics.json'} + {tmp_path / 'b' / 'metrics.json'}`" in text
    capsys.readouterr()

    def error(*runs: str) -> str:
        assert main(["compare", *runs]) == 1
        return capsys.readouterr().err

    a, b, c = (str(tmp_path / name) for name in ("a", "b", "c"))
    assert "pool different numbers of folders: [2, 3]" in error(f"x={a},{b}", f"y={a},{b},{c}")
    assert ("pooled row 'y': folder 1 (b) holds other sequences than folder 1 of 'x' (a); list every "
            "row's folders in the same fold order") in error(f"x={a},{b}", f"y={b},{a}")
    assert "expected LABEL=DIR or LABEL=DIR,DIR,…" in error(f"x={a},")
    assert "'x': more than one of its folders ends in 'a'" in error(f"x={a},{a}")
    assert ("'x': sequence 's1' is in more than one pooled run ('a-changed' among them)"
            in error(f"x={a},{tmp_path / 'a-changed'}"))


# --- dataset readers ----------------------------------------------------------------------------


def test_load_davis_with_and_without_resolution_level(tmp_path: Path) -> None:
    with_level = load_davis(_davis_fixture(tmp_path / "a"))
    without = load_davis(_davis_fixture(tmp_path / "b", level=""))
    for sequences in (with_level, without):
        assert [s.name for s in sequences] == ["alpha", "beta"]
        assert sequences[0].gt_frames == (0, 1, 2, 3, 4)
        assert sequence_result_path("r", sequences[0], 3) == Path("r/alpha/00003.png")
        assert sequences[0].read_gt(1).sum() == 120
    assert with_level[0].frames[0] == tmp_path / "a/JPEGImages/480p/alpha/00000.jpg"


def test_sequence_selection_and_split_files(tmp_path: Path) -> None:
    root = _davis_fixture(tmp_path)
    assert [s.name for s in load_davis(root, sequences=["beta"])] == ["beta"]
    # DAVIS-2016 style: frame/annotation pairs; the frame's folder is the sequence.
    (root / "train.txt").write_text(
        "/JPEGImages/480p/beta/00000.jpg /Annotations/480p/beta/00000.png\n"
        "/JPEGImages/480p/beta/00001.jpg /Annotations/480p/beta/00001.png\n"
    )
    assert read_split(root / "train.txt") == ["beta"]
    assert [s.name for s in load_davis(root, split="train")] == ["beta"]
    # DAVIS-2017 style: ImageSets/<year>/<split>.txt with one name per line.
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("alpha\n\nbeta\n")
    assert [s.name for s in load_davis(root, split="val")] == ["alpha", "beta"]
    with pytest.raises(InputError, match="sequence\\(s\\) gamma not found"):
        load_davis(root, sequences=["gamma"])
    with pytest.raises(InputError, match="split 'test' not found"):
        load_davis(root, split="test")


def _fbms_fixture(root: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """FBMS sequence `cars1` (frames 01..05) annotated at frames 01 (pgm) and 05 (ppm)."""
    seq = root / "cars1"
    for t in range(1, 6):
        _write(seq / f"cars1_{t:02d}.jpg", np.full((H, W, 3), 90, np.uint8))
    pgm = np.zeros((H, W), np.uint8)
    pgm[2:6, 2:8] = 100  # object 1
    pgm[10:14, 10:20] = 255  # object 2
    _write(seq / "GroundTruth" / "cars1_01_gt.pgm", pgm)
    ppm = np.full((H, W, 3), 255, np.uint8)  # white background
    ppm[3:9, 4:12] = (0, 0, 255)
    ppm[15:20, 20:30] = (255, 0, 0)
    _write(seq / "GroundTruth" / "cars1_05_gt.ppm", ppm)
    _write(seq / "GroundTruth" / "cars1_05_PROB_gt.ppm", np.zeros((H, W, 3), np.uint8))
    merged = {"cars1_01.png": pgm > 0, "cars1_05.png": np.any(ppm != 255, axis=2)}
    return root, merged


def test_load_fbms_sparse_ground_truth(tmp_path: Path) -> None:
    root, merged = _fbms_fixture(tmp_path / "Testset")
    (seq,) = load_fbms(root)
    assert seq.name == "cars1"
    assert len(seq.frames) == 5
    assert seq.gt_frames == (0, 4)
    assert [p.name for p in seq.gt_paths] == ["cars1_01_gt.pgm", "cars1_05_gt.ppm"]
    assert seq.read_gt(0).sum() == 4 * 6 + 4 * 10  # both objects merged
    assert seq.read_gt(1).tolist() == merged["cars1_05.png"].tolist()
    with pytest.raises(InputError, match="point --root at"):
        load_fbms(tmp_path)


def test_fbms_scoring_through_the_cli(tmp_path: Path) -> None:
    root, merged = _fbms_fixture(tmp_path / "Testset")
    results = tmp_path / "results"
    for name, mask in merged.items():
        _write(results / "cars1" / name, mask.astype(np.uint8) * 255)
    # Frame 05: predict only the first object (6×8 of 6×8 + 5×10 px).
    only_first = np.zeros((H, W), np.uint8)
    only_first[3:9, 4:12] = 255
    _write(results / "cars1" / "cars1_05.png", only_first)
    out = tmp_path / "out"
    assert main(["score", "--dataset", "fbms", "--root", str(root), "--results", str(results),
                 "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    seq = metrics["sequences"]["cars1"]
    assert seq["frames"] == 2
    assert seq["J_per_frame"] == pytest.approx([1.0, 48 / 98])
    assert seq["precision_per_frame"] == [1.0, 1.0]
    assert seq["recall_per_frame"] == pytest.approx([1.0, 48 / 98])
    assert metrics["global"]["region"]["recall"] == pytest.approx((1 + 48 / 98) / 2)
    assert "F (region)" in (out / "report.md").read_text()


# --- score CLI / evaluate_results ------------------------------------------------------------


def test_ground_truth_against_itself_scores_one_everywhere(tmp_path: Path) -> None:
    root = _davis_fixture(tmp_path / "davis")
    results = _copy_annotations_as_results(root, tmp_path / "results")
    out = tmp_path / "out"
    rc = main(["score", "--root", str(root), "--results", str(results), "--out", str(out),
               "--sequences", "alpha,beta", "--quiet"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "davis"
    assert set(metrics) >= {"dataset", "sequences", "global", "fps", "config"}
    perfect = {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    for name in ("alpha", "beta"):
        seq = metrics["sequences"][name]
        assert seq["J"] == perfect and seq["F"] == perfect
        assert seq["frames"] == 3  # 5 frames minus first and last
        assert seq["J_per_frame"] == [1.0, 1.0, 1.0]
        assert seq["F_per_frame"] == [1.0, 1.0, 1.0]
    assert metrics["global"]["J"] == perfect
    assert metrics["global"]["F"] == perfect
    assert metrics["global"]["JF"] == 1.0
    report = (out / "report.md").read_text()
    assert "| alpha | 1.000 | 1.000 | 0.000 | 1.000 | 1.000 | 0.000 | 3 |" in report
    assert "| **global** |" in report
    for plot in ("alpha.png", "beta.png", "j_per_sequence.png"):
        assert (out / "plots" / plot).stat().st_size > 0


def test_evaluate_results_records_fps_and_config(tmp_path: Path) -> None:
    root = _davis_fixture(tmp_path / "davis", level="")
    results = _copy_annotations_as_results(root, tmp_path / "results", level="")
    metrics = evaluate_results(load_davis(root), results, tmp_path / "out",
                               config={"alpha": 0.001}, fps=12.5, plots=False)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == metrics
    assert saved["fps"] == 12.5 and saved["config"] == {"alpha": 0.001}
    assert "12.50 frames/s" in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "plots").exists()


def test_missing_result_mask_is_an_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _davis_fixture(tmp_path / "davis")
    results = _copy_annotations_as_results(root, tmp_path / "results")
    missing = results / "beta" / "00002.png"
    missing.unlink()
    with pytest.raises(InputError, match=f"missing result mask {re.escape(str(missing))}"):
        evaluate_results(load_davis(root), results, tmp_path / "out")
    assert main(["score", "--root", str(root), "--results", str(results),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 1
    assert str(missing) in capsys.readouterr().err


def test_result_of_another_size_is_an_error(tmp_path: Path) -> None:
    root = _davis_fixture(tmp_path / "davis")
    results = _copy_annotations_as_results(root, tmp_path / "results")
    wrong = results / "alpha" / "00001.png"
    _write(wrong, np.zeros((H, W + 1), np.uint8))
    message = rf"result mask {re.escape(str(wrong))} is 33×24 .* is 32×24"
    with pytest.raises(InputError, match=message):
        evaluate_results(load_davis(root), results, tmp_path / "out")


# --- the results layout -------------------------------------------------------------------------


def test_results_layout_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    from amp_ros.datasets.results import read_result_mask, result_path, write_result

    (sequence,) = load_davis(_davis_fixture(tmp_path / "davis"), sequences=["beta"])
    mask = _blob(2) > 0
    path = write_result(tmp_path / "results", sequence, 2, mask)
    assert path == result_path(tmp_path / "results", "beta", "00002") == tmp_path / "results/beta/00002.png"
    assert sorted(p.name for p in path.parent.iterdir()) == ["00002.png"]  # no temporary left
    np.testing.assert_array_equal(read_result_mask(path), mask)
    assert set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))) == {0, 255}
    with pytest.raises(InputError, match="H×W mask"):
        write_result(tmp_path / "results", sequence, 3, np.zeros((2, 2, 3)))
