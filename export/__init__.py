"""Model -> ONNX exporters with a sidecar / model card and a parity check (``python -m export --help``).

- :mod:`export.detector`: YOLO-family detectors (Ultralytics checkpoints through :mod:`export.ultralytics`,
  any ``torch.nn.Module`` in a declared output layout); sidecar read by ``stream.detect.Detector``.
- :mod:`export.depth`: depth networks (the seed reports' U-Net of :mod:`export.unet`, Depth Anything V2,
  MiDaS, YOLO26-depth, any ``torch.nn.Module``); model card read by ``depthstream.schema.card.load_card``.
- :mod:`export.fetch`: ``make models`` (the model store's files) and ``python -m export weights`` (the pinned public
  checkpoints of ``export/weights.yaml``, exported).
- :mod:`export.tiny`: tiny random detectors of every output layout (tests, timing, trying the path).

torch and the model libraries are imported lazily: importing this package needs neither.
"""
