"""Tiny, randomly initialised detectors with the output layouts of the real families, for tests, timing and
trying the export path without any weights (``python -m export detector --module export.tiny:NAME``).

Each is a few strided convolutions and a 1x1 head per stride (8, 16, 32), decoded inside the graph the way
the real exporters leave their outputs:

- ``ultralytics_detector``: [1, 4+C, N], cx, cy, w, h in input pixels, sigmoid class scores (YOLOv8/11).
- ``yolov5_detector``: [1, 3N, 5+C], three anchors per cell, cx, cy, w, h, objectness, class scores.
- ``end2end_detector``: [1, K, 6], the top-K rows as x1, y1, x2, y2, score, class (YOLO26/v10 NMS-free).
- ``yolox_detector``: [1, N, 5+C] raw YOLOX rows (dx, dy, log w, log h, objectness, class scores).

Their boxes mean nothing (random weights); the scores start low and distinct (biases -7 .. -3) so few pass a threshold.
"""

from __future__ import annotations

from .common import require_torch

STRIDES = (8, 16, 32)
NUM_CLASSES = 80


def _build(kind: str, num_classes: int, width: int = 8):
    torch = require_torch("the tiny detectors")
    nn = torch.nn
    per_cell = {"ultralytics": 4 + num_classes, "end2end": 4 + num_classes, "yolox": 5 + num_classes,
                "yolov5": 3 * (5 + num_classes)}[kind]

    def conv(c_in: int, c_out: int, stride: int):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out), nn.SiLU())

    class TinyDetector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(conv(3, width, 2), conv(width, width, 2), conv(width, width, 2))  # stride 8
            self.down = nn.ModuleList([conv(width, width, 2), conv(width, width, 2)])  # 16, 32
            self.heads = nn.ModuleList(nn.Conv2d(width, per_cell, 1) for _ in STRIDES)
            with torch.no_grad():
                for head in self.heads:
                    head.bias.zero_()
                    bias = head.bias.view(-1, per_cell // (3 if kind == "yolov5" else 1))
                    bias[:, 4:] = torch.linspace(-7.0, -3.0, bias.shape[1] - 4)  # distinct, low scores

        def levels(self, x):
            feats = [self.stem(x)]
            for down in self.down:
                feats.append(down(feats[-1]))
            return [head(f) for head, f in zip(self.heads, feats)]

        def forward(self, x):
            rows = []
            for out, stride in zip(self.levels(x), STRIDES):
                b, _, h, w = out.shape
                gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
                grid = torch.stack([gx, gy], dim=-1).reshape(1, h * w, 2)
                if kind == "yolov5":
                    t = out.reshape(b, 3, 5 + num_classes, h * w).permute(0, 1, 3, 2).reshape(b, 3 * h * w, -1)
                    grid = grid.repeat(1, 3, 1)
                else:
                    t = out.reshape(b, per_cell, h * w).permute(0, 2, 1)
                if kind == "yolox":
                    rows.append(torch.cat([t[..., :4], torch.sigmoid(t[..., 4:])], dim=-1))
                    continue
                cxy = (grid + 0.5 + torch.tanh(t[..., 0:2])) * stride
                wh = torch.exp(t[..., 2:4].clamp(-4, 4)) * stride
                rows.append(torch.cat([cxy, wh, torch.sigmoid(t[..., 4:])], dim=-1))
            y = torch.cat(rows, dim=1)
            if kind in ("yolox", "yolov5"):
                return y
            if kind == "ultralytics":
                return y.permute(0, 2, 1)
            scores, cls = y[..., 4:].max(dim=-1)
            k = min(100, y.shape[1])
            top, idx = scores.topk(k, dim=1)
            boxes = torch.gather(y[..., :4], 1, idx.unsqueeze(-1).expand(-1, -1, 4))
            xyxy = torch.cat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], dim=-1)
            cls = torch.gather(cls, 1, idx).to(x.dtype)
            return torch.cat([xyxy, top.unsqueeze(-1), cls.unsqueeze(-1)], dim=-1)

    torch.manual_seed(0)
    return TinyDetector().eval()


def ultralytics_detector(num_classes: int = NUM_CLASSES):
    """[1, 4+C, N]: the YOLOv8 / YOLO11 layout."""
    return _build("ultralytics", num_classes)


def yolov5_detector(num_classes: int = NUM_CLASSES):
    """[1, 3N, 5+C]: the YOLOv5 / YOLOv7 layout."""
    return _build("yolov5", num_classes)


def end2end_detector(num_classes: int = NUM_CLASSES):
    """[1, K, 6]: the YOLO26 / YOLOv10 NMS-free layout."""
    return _build("end2end", num_classes)


def yolox_detector(num_classes: int = NUM_CLASSES):
    """[1, N, 5+C]: the raw YOLOX layout."""
    return _build("yolox", num_classes)
