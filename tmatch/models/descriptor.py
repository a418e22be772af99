"""The ``neural-local`` matcher's network: a small CNN that describes one rectified patch.

Input: ``(B, 1, 32, 32)`` grayscale patches, already rotated and scaled to their keypoint's
frame (see :mod:`tmatch.matchers.neural_local.describe`); each patch is normalised to zero
mean and unit variance inside the network, so brightness and contrast do not reach the weights.
Output: ``(B, 128)`` L2-normalised descriptors. About 1.4 M multiply-adds per patch: two
thousand patches take about a tenth of a second on one CPU core (the matcher runs it in numpy:
:class:`tmatch.matchers.neural_local.describe.Describer`).

The layout follows L2-Net / HardNet (strided 3×3 convolutions, batch norm, ReLU, a final
valid convolution to a vector), shallower and narrower (TFeat-sized) so that it trains on a
CPU in minutes and describes a whole image's keypoints in about the time of detecting them.

>>> import torch
>>> net = PatchDescriptor().eval()
>>> tuple(net(torch.rand(5, 1, 32, 32)).shape)
(5, 128)
"""

from __future__ import annotations

import torch
from torch import nn

#: side of the square patch the network reads, pixels.
PATCH = 32
#: length of a descriptor.
DIM = 128


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout, affine=False), nn.ReLU(inplace=True))


class PatchDescriptor(nn.Module):
    """``(B, 1, 32, 32)`` patches → ``(B, 128)`` unit descriptors.

    Args:
        width: channels of the first block (later blocks use 2× and 4×).
        dim: descriptor length.
    """

    def __init__(self, width: int = 16, dim: int = DIM):
        super().__init__()
        w = int(width)
        self.features = nn.Sequential(
            _block(1, w, 2),          # 16×16
            _block(w, 2 * w, 2),      # 8×8
            _block(2 * w, 2 * w, 1),
            _block(2 * w, 4 * w, 2),  # 4×4
            nn.Dropout(0.1),
            nn.Conv2d(4 * w, dim, 4, bias=False),
            nn.BatchNorm2d(dim, affine=False),
        )
        self.width = w
        self.dim = int(dim)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        if patches.ndim != 4 or patches.shape[1] != 1 or tuple(patches.shape[2:]) != (PATCH, PATCH):
            raise ValueError(f"patches must be (B, 1, {PATCH}, {PATCH}), got {tuple(patches.shape)}")
        x = patches.float()
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        x = (x - mean) / (std + 1e-2)
        y = self.features(x).flatten(1)
        return y / (y.norm(dim=1, keepdim=True) + 1e-8)
