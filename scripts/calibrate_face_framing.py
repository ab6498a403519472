"""Derive the reference geometry of analyzers/face/framing.py.

Two measurements, both with the product's own landmarker (eye centre = midpoint of
the eye's two corners, as :func:`analyzers.face.framing.eyes_from_landmarks`):

- **Haar box** (always): OpenCV's Haar cascade and the landmarker on the same images
  (scikit-image's 100 LFW faces, each upscaled to 100 and 160 px, the astronaut, and
  12 bench scenes). For every face both find, the eye centres as fractions of the
  Haar box; the medians become ``HAAR_EYES``.
- **Framed crops** (``--crops DIR``): the eye centres in a folder of already framed
  face crops (FER2013's 48x48 images, for example: not shipped, research-only terms).
  Each crop is upscaled 4x with a replicated margin so the detector sees it whole;
  the medians, mapped back to the crop's own pixels, are ``FER2013_FRAMING``.

Usage: ``.venv/bin/python scripts/calibrate_face_framing.py [--crops DIR]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzers.face.bench import astronaut, bench_frames, lfw_subset, lfw_tile  # noqa: E402
from analyzers.face.detector import HaarFaceDetector  # noqa: E402
from analyzers.face.framing import eyes_from_landmarks  # noqa: E402
from analyzers.face.mediapipe.landmarker import FaceLandmarker  # noqa: E402

CROP_UPSCALE = 4


def haar_calibration(landmarker: FaceLandmarker) -> np.ndarray:
    """Rows ``(lx, ly, rx, ry)``: eye centres as fractions of the Haar box, per face."""
    haar = HaarFaceDetector(min_face_px=20)
    faces, _ = lfw_subset()
    images = [lfw_tile(patch, side) for patch in faces for side in (100, 160)]
    images += [astronaut()] + [frame.image for frame in bench_frames(12, seed=1)]
    rows = []
    for image in images:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        boxes = [face.box for face in haar.detect(image, gray)]
        for face in landmarker.process([image], [None])[0]:
            eyes = eyes_from_landmarks(face.landmarks)
            cx = (eyes.left[0] + eyes.right[0]) / 2
            cy = (eyes.left[1] + eyes.right[1]) / 2
            for x, y, w, h in boxes:
                if x < cx < x + w and y < cy < y + h:
                    rows.append(
                        (
                            (eyes.left[0] - x) / w,
                            (eyes.left[1] - y) / h,
                            (eyes.right[0] - x) / w,
                            (eyes.right[1] - y) / h,
                        )
                    )
    return np.asarray(rows)


def crop_calibration(landmarker: FaceLandmarker, folder: Path) -> np.ndarray:
    """Rows ``(lx, ly, rx, ry)``: eye centres in the crops' own pixels, per crop."""
    rows = []
    for path in sorted(folder.iterdir()):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        height, width = bgr.shape[:2]
        big = cv2.resize(bgr, (width * CROP_UPSCALE, height * CROP_UPSCALE))
        margin = width * CROP_UPSCALE // 2
        big = cv2.copyMakeBorder(big, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        faces = landmarker.process([cv2.cvtColor(big, cv2.COLOR_BGR2RGB)], [None])[0]
        if not faces:
            continue
        eyes = eyes_from_landmarks(faces[0].landmarks)
        # OpenCV's resize maps crop pixel u to (u + 0.5) * s - 0.5 in the big image.
        rows.append(
            tuple((v - margin + 0.5) / CROP_UPSCALE - 0.5 for v in (*eyes.left, *eyes.right))
        )
    return np.asarray(rows)


def _print(name: str, rows: np.ndarray) -> None:
    print(f"{name}: {len(rows)} faces")
    print("  median (lx, ly, rx, ry):", np.round(np.median(rows, axis=0), 3).tolist())
    print("  SD:                     ", np.round(rows.std(axis=0), 3).tolist())
    iod = np.hypot(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
    print(f"  inter-ocular distance: {np.median(iod):.3f} (SD {iod.std():.3f})")


def main() -> None:
    """Print the medians (and spreads) the framing module's constants come from."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=Path, help="a folder of framed face crops")
    args = parser.parse_args()
    torch.set_num_threads(1)
    landmarker = FaceLandmarker(torch.device("cpu"), max_faces=4, min_face_px=40)
    _print("Haar box (fractions of the box side)", haar_calibration(landmarker))
    if args.crops is not None:
        _print(f"crops in {args.crops} (pixels)", crop_calibration(landmarker, args.crops))


if __name__ == "__main__":
    main()
