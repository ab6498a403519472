"""Face geometry from MediaPipe Face Mesh landmarks.

Pure, synchronous numpy code: landmarks in, frozen dataclasses out. Nothing here
loads a model; the landmark model is a separate analyzer. Submodules are imported
explicitly (``analyzers.face.geometry.features``); nothing is re-exported.
"""
