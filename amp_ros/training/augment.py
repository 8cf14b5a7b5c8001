"""Per-sample augmentation of (frame, flow, label) triples, in numpy/OpenCV.

Everything works on one training sample at the training size: frame h×w×3 uint8 RGB, flow h×w×2
float32 (previous → current frame, pixels, in the previous frame's grid, as DIS gives it) and
label h×w uint8 (0 background, 1 object, 255 ignore).

The augmentation that matters is :func:`paste_object`: a masked object cut from one sequence is
pasted onto another sequence's frame with a known synthetic motion, so the network must find
moving objects it has never seen, on backgrounds it has never seen them on. Plain training
memorises the 30 DAVIS sequences (J 0.85 on train, 0.51 on unseen ones); pasting multiplies the
(object, background, motion) combinations.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amp_ros.flow import resize_flow

IGNORE = 255


@dataclass(frozen=True)
class PasteMotion:
    """A pasted object's placement in the previous and the current frame.

    The object patch (its bounding box, size ph×pw) is placed with its top-left corner at
    ``prev_xy`` scaled by ``prev_scale`` in the previous frame, and at ``curr_xy`` scaled by
    ``curr_scale`` in the current frame. A patch pixel u then sits at x0 = prev_xy + s0·u and
    x1 = curr_xy + s1·u, so the flow at x0 is x1 − x0 = (curr_xy − prev_xy) + (s1/s0 − 1)(x0 −
    prev_xy): a translation plus a zoom about the object.
    """

    prev_xy: tuple[float, float]
    prev_scale: float
    curr_xy: tuple[float, float]
    curr_scale: float

    def matrix(self, which: str) -> np.ndarray:
        """2×3 affine matrix from patch to frame coordinates ('prev' or 'curr')."""
        (x, y), s = (self.prev_xy, self.prev_scale) if which == "prev" else (
            self.curr_xy, self.curr_scale)
        return np.array([[s, 0.0, x], [0.0, s, y]], np.float32)

    def flow_at(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (dx, dy) of previous-frame points (xs, ys) on the object."""
        k = self.curr_scale / self.prev_scale
        dx = self.curr_xy[0] - self.prev_xy[0] + (k - 1.0) * (xs - self.prev_xy[0])
        dy = self.curr_xy[1] - self.prev_xy[1] + (k - 1.0) * (ys - self.prev_xy[1])
        return dx, dy


def hflip(frame: np.ndarray, flow: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mirror left–right; the flow's x component changes sign."""
    flow = flow[:, ::-1].copy()
    flow[..., 0] *= -1.0
    return np.ascontiguousarray(frame[:, ::-1]), flow, np.ascontiguousarray(label[:, ::-1])


def scale_crop(
    frame: np.ndarray,
    flow: np.ndarray,
    label: np.ndarray,
    crop: tuple[int, int],
    rng: np.random.Generator,
    zoom: tuple[float, float] = (0.9, 1.3),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resize by a random factor (at least enough to cover ``crop``), then crop at random.

    The scale is U(zoom) relative to the training size (where inference sees objects), raised
    to the smallest factor for which the frame still covers the crop; flow vectors are scaled
    with the pixels.
    """
    h, w = label.shape
    ch, cw = crop
    cover = max(ch / h, cw / w)
    scale = max(cover, rng.uniform(*zoom))
    nh, nw = max(ch, int(round(h * scale))), max(cw, int(round(w * scale)))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (nw, nh), interpolation=interp)
        flow = resize_flow(flow, nh, nw)
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    y = int(rng.integers(0, nh - ch + 1))
    x = int(rng.integers(0, nw - cw + 1))
    return (np.ascontiguousarray(frame[y:y + ch, x:x + cw]),
            np.ascontiguousarray(flow[y:y + ch, x:x + cw]),
            np.ascontiguousarray(label[y:y + ch, x:x + cw]))


def photometric(frame: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Random brightness, contrast, saturation, hue shift, and sometimes greyscale or blur."""
    image = frame.astype(np.float32)
    contrast = 1.0 + strength * rng.uniform(-0.3, 0.3)
    brightness = strength * rng.uniform(-25.0, 25.0)
    mean = image.mean()
    image = (image - mean) * contrast + mean + brightness
    grey = image.mean(axis=2, keepdims=True)
    if rng.random() < 0.1:
        image = np.repeat(grey, 3, axis=2)  # greyscale sources (ucsd-bgs) exist
    else:
        saturation = 1.0 + strength * rng.uniform(-0.3, 0.3)
        image = grey + (image - grey) * saturation
        image *= 1.0 + strength * rng.uniform(-0.08, 0.08, size=3).astype(np.float32)  # tint
    out = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    return out


def camera_motion(flow: np.ndarray, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    """Add a synthetic camera motion (pan + small zoom about a random centre) to every pixel."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    pan = rng.uniform(-max_shift, max_shift, size=2).astype(np.float32)
    zoom = np.float32(rng.uniform(-0.03, 0.03))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    out = flow.astype(np.float32, copy=True)
    out[..., 0] += pan[0] + zoom * (xs - cx)
    out[..., 1] += pan[1] + zoom * (ys - cy)
    return out


def object_patch(
    frame: np.ndarray, mask: np.ndarray, margin: int = 2
) -> tuple[np.ndarray, np.ndarray] | None:
    """The object's bounding box (plus ``margin``) from a frame: (rgb ph×pw×3, mask ph×pw float)."""
    ys, xs = np.nonzero(mask == 1)
    if ys.size < 16:
        return None
    y0, y1 = max(0, ys.min() - margin), min(mask.shape[0], ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(mask.shape[1], xs.max() + 1 + margin)
    return frame[y0:y1, x0:x1].copy(), (mask[y0:y1, x0:x1] == 1).astype(np.float32)


def random_motion(
    patch_hw: tuple[int, int], frame_hw: tuple[int, int], rng: np.random.Generator,
    *, size_range: tuple[float, float] = (0.2, 0.6), max_shift: float = 0.06,
) -> PasteMotion:
    """A random placement: the object's longer box side spans ``size_range`` of the frame's
    shorter side, moves by up to ``max_shift`` × the frame's longer side and zooms by ±8 %."""
    ph, pw = patch_hw
    h, w = frame_hw
    s0 = rng.uniform(*size_range) * min(h, w) / max(ph, pw)
    s1 = s0 * rng.uniform(0.92, 1.08)
    shift = max_shift * max(h, w)
    # At least ~1.5 px of motion, so the object really moves relative to its surroundings.
    while True:
        d = rng.uniform(-shift, shift, size=2)
        if np.hypot(*d) >= min(1.5, shift):
            break
    x0 = rng.uniform(-0.25 * pw * s0, w - 0.75 * pw * s0)
    y0 = rng.uniform(-0.25 * ph * s0, h - 0.75 * ph * s0)
    return PasteMotion((float(x0), float(y0)), float(s0), (float(x0 + d[0]), float(y0 + d[1])),
                       float(s1))


def paste_object(
    frame: np.ndarray,
    flow: np.ndarray,
    label: np.ndarray,
    patch: tuple[np.ndarray, np.ndarray],
    motion: PasteMotion,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste an object patch onto a sample with a known motion between the two frames.

    - current frame: the patch composited (alpha = its mask) at its current placement;
    - flow (previous-frame grid, like DIS): at the pixels the object covered in the previous
      frame, the known displacement (:meth:`PasteMotion.flow_at`); everywhere else the
      background's own flow is kept;
    - label: the pasted object (current placement) is object, **and so is the original object
      where the paste does not hide it** — both are independently moving objects, and teaching
      the network to call a moving DAVIS object background would contradict every other sample.
      Pixels the paste half-covers (alpha between 0.25 and 0.75, the blended rim) are ignored.

    Only the current frame is rendered: the network never sees the previous frame, only the flow.
    """
    rgb, alpha = patch
    h, w = label.shape
    curr_alpha = cv2.warpAffine(alpha, motion.matrix("curr"), (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    curr_rgb = cv2.warpAffine(rgb, motion.matrix("curr"), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    prev_alpha = cv2.warpAffine(alpha, motion.matrix("prev"), (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = curr_alpha[..., None]
    out_frame = (frame.astype(np.float32) * (1.0 - a) + curr_rgb.astype(np.float32) * a)
    out_frame = np.clip(out_frame + 0.5, 0, 255).astype(np.uint8)

    out_flow = flow.astype(np.float32, copy=True)
    ys, xs = np.nonzero(prev_alpha >= 0.5)
    if ys.size:
        dx, dy = motion.flow_at(xs.astype(np.float32), ys.astype(np.float32))
        out_flow[ys, xs, 0] = dx
        out_flow[ys, xs, 1] = dy

    out_label = label.copy()
    out_label[curr_alpha >= 0.5] = 1
    out_label[(curr_alpha > 0.25) & (curr_alpha < 0.75)] = IGNORE
    return out_frame, out_flow, out_label


def paste_still_object(
    frame: np.ndarray,
    flow: np.ndarray,
    label: np.ndarray,
    patch: tuple[np.ndarray, np.ndarray],
    placement: PasteMotion,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste an object patch that does not move against what is behind it: something salient
    that is not the moving object (a sign, a parked car, the fence of a horse jump).

    Returns (frame, label); the flow is left as it is, so the paste moves with the background
    like a still object in the scene. The pasted pixels are background; where they hide the
    original object they are ignored (the flow there is that object's own motion), and so is the
    blended rim.
    """
    rgb, alpha = patch
    h, w = label.shape
    matrix = placement.matrix("curr")
    curr_alpha = cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    curr_rgb = cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    a = curr_alpha[..., None]
    out_frame = frame.astype(np.float32) * (1.0 - a) + curr_rgb.astype(np.float32) * a
    out_frame = np.clip(out_frame + 0.5, 0, 255).astype(np.uint8)
    covered = curr_alpha >= 0.5
    out_label = label.copy()
    out_label[covered] = 0
    out_label[covered & (label == 1)] = IGNORE
    out_label[(curr_alpha > 0.25) & (curr_alpha < 0.75)] = IGNORE
    return out_frame, out_label
