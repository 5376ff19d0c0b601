"""The seed reports' depth U-Net (report A), as a model definition a trained checkpoint loads into.

Report A: a 4-block encoder / decoder; every block is two 3x3 convolutions, each followed by batch norm
and LeakyReLU(0.2); 2x2 max-pooling between encoder blocks; the decoder up-samples by 2, concatenates
the encoder block of the same resolution (skip connection) and applies a block; a 1x1 convolution and a
sigmoid give depth in [0, 1], which times the training set's maximum depth (NYU Depth V2: 10 m) is
metres. The network runs at half the camera resolution (NYU's 640x480 -> 320x240).

Parameter names (what a checkpoint must hold, ``base`` = channels of the first block)::

    enc.{0..3}.{0,3}.weight, enc.{i}.{1,4}.*   encoder blocks, base * 2**i channels (conv, bn, conv, bn)
    mid.*                                      bottleneck block, base * 16 channels
    dec.{0..3}.*                               decoder blocks, base * 2**(3 - i) channels
    head.weight, head.bias                     the 1x1 convolution to one channel

Input (1, 3, H, W) float32 (H, W multiples of 16), output (1, 1, H, W) in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

from depthstream.errors import ConfigError

from .common import load_into, load_state_dict, require_torch

BLOCKS = 4
MULTIPLE = 2 ** BLOCKS
DEFAULT_BASE = 32
DEFAULT_SIZE = (240, 320)  # NYU Depth V2's 480x640 at half resolution
DEFAULT_MAX_DEPTH_M = 10.0  # NYU Depth V2


def build_unet(base: int = DEFAULT_BASE):
    """A randomly initialised depth U-Net with ``base`` channels in its first block."""
    torch = require_torch("the depth U-Net")
    nn = torch.nn

    def block(c_in: int, c_out: int):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2),
        )

    class DepthUNet(nn.Module):
        """(1, 3, H, W) -> (1, 1, H, W) normalised depth in [0, 1]; H and W multiples of 16."""

        def __init__(self) -> None:
            super().__init__()
            chans = [base * 2 ** i for i in range(BLOCKS)]
            self.base = base
            self.enc = nn.ModuleList(block(c_in, c) for c_in, c in zip([3] + chans[:-1], chans))
            self.pool = nn.MaxPool2d(2)
            self.mid = block(chans[-1], chans[-1] * 2)
            ups = [chans[-1] * 2] + chans[::-1][:-1]
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.dec = nn.ModuleList(block(c_up + c, c) for c_up, c in zip(ups, chans[::-1]))
            self.head = nn.Conv2d(chans[0], 1, 1)

        def forward(self, x):
            skips = []
            for enc in self.enc:
                x = enc(x)
                skips.append(x)
                x = self.pool(x)
            x = self.mid(x)
            for dec, skip in zip(self.dec, reversed(skips)):
                x = dec(torch.cat([self.up(x), skip], dim=1))
            return torch.sigmoid(self.head(x))

    return DepthUNet()


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    h, w = size
    if h <= 0 or w <= 0 or h % MULTIPLE or w % MULTIPLE:
        raise ConfigError(f"U-Net input size must be two positive multiples of {MULTIPLE} (four 2x2 poolings), "
                          f"got {h}x{w}; e.g. --size 240 320 for half of 480x640")
    return h, w


def load_unet(weights: Path):
    """The U-Net with a trained checkpoint loaded; the first block's width is read from the checkpoint."""
    state = load_state_dict(weights, "unet")
    first = state.get("enc.0.0.weight")
    if first is None or len(first.shape) != 4:
        raise ConfigError(f"unet: {weights} has no 'enc.0.0.weight' (the first 3x3 convolution); it was not "
                          f"saved from export.unet's DepthUNet (parameter names are listed in export/unet.py)")
    model = build_unet(int(first.shape[0]))
    load_into(model, state, weights, "unet", hint="parameter names and shapes are listed in export/unet.py")
    return model.eval()
