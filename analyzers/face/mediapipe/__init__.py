"""PyTorch ports of MediaPipe's face detectors, face mesh and iris landmark networks.

The four networks come from the ``mediapipe`` 0.10.21 wheel (Apache 2.0, see
``weights/LICENSE-mediapipe`` and ``weights/PROVENANCE.md``):

- :mod:`.blazeface`: BlazeFace short range (``face_detection_short_range.tflite``),
  128 x 128 input, 896 SSD anchors, box + 6 keypoints per anchor.
- :mod:`.blazeface_full_range`: BlazeFace full range
  (``face_detection_full_range_sparse.tflite``), 192 x 192 input, 2304 anchors,
  the same outputs per anchor.
- :mod:`.facemesh`: Face Mesh (``face_landmark.tflite``), 192 x 192 input,
  468 3-D landmarks and a face-presence logit.
- :mod:`.iris`: iris landmarks (``iris_landmark.tflite``), 64 x 64 eye crop,
  71 eye-contour/brow points and 5 iris points.

:mod:`.roi` holds the crop geometry MediaPipe's graphs use, and
:mod:`.landmarker` chains everything into :class:`~.landmarker.FaceLandmarker`,
which runs in an inference worker process (no asyncio) and tiles detection so
that faces down to ~40 px are found in a room camera's frame. The weights are plain
torch state dicts converted by ``scripts/convert_mediapipe_weights.py``; no
TFLite runtime is needed at run time. Submodules are imported explicitly;
nothing is re-exported here.
"""
