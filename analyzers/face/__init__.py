"""Face analysis: detectors, the mini-Xception port and the face emotion analyzer.

Submodules are imported explicitly (``analyzers.face.emotion``); nothing is
re-exported here so that importing the detector does not import torch.
"""
