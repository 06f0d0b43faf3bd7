"""VGG19 feature extractor and the pix2pixHD perceptual (VGG) loss, without torchvision.

The layer indices match torchvision's ``vgg19().features`` so its ImageNet state dict
(keys ``features.N.weight`` / ``features.N.bias``, or ``N.weight`` for a bare
``features`` state dict) loads as is. Only the layers up to relu5_1 are built. Nothing is
downloaded: the weights come from a local file.

Simonyan & Zisserman, arXiv:1409.1556; loss weights from pix2pixHD (Wang et al., CVPR 2018).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import CheckpointError

# torchvision's VGG19 "E" configuration up to relu5_1 (index 29)
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]
_SLICE_ENDS = (2, 7, 12, 21, 30)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    ch = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(ch, v, 3, padding=1), nn.ReLU()]
            ch = v
    return nn.Sequential(*layers[:_SLICE_ENDS[-1]])


class VGG19Features(nn.Module):
    """relu1_1 ... relu5_1 activations of VGG19 for images in [-1, 1] with 1 or 3 channels.

    Grey images are repeated to RGB and normalised with the ImageNet mean/std the weights
    were trained with (pix2pixHD feeds [-1, 1] images unnormalised; we normalise).
    Parameters are frozen.
    """

    def __init__(self):
        super().__init__()
        self.features = _features()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def load_weights(self, path: str) -> None:
        """Load torchvision-format VGG19 ImageNet weights from a local file."""
        if not os.path.isfile(path):
            raise CheckpointError(f"VGG19 weights file {path!r} does not exist; give the path of a local "
                                  "torchvision-format vgg19 state dict, or set vgg_weights_path to None")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
            raise CheckpointError(f"cannot read VGG19 weights {path!r}: {exc}") from exc
        if not isinstance(state, dict):
            raise CheckpointError(f"{path!r} is not a state dict of VGG19")
        wanted = self.features.state_dict()
        picked = {}
        for key in wanted:
            for candidate in (f"features.{key}", key):
                if candidate in state:
                    picked[key] = state[candidate]
                    break
        missing = sorted(set(wanted) - set(picked))
        if missing:
            raise CheckpointError(f"{path!r} is not a VGG19 state dict: missing {missing[:4]}...")
        for key, value in picked.items():
            if tuple(value.shape) != tuple(wanted[key].shape):
                raise CheckpointError(f"{path!r}: {key} has shape {tuple(value.shape)}, "
                                      f"VGG19 needs {tuple(wanted[key].shape)}")
        self.features.load_state_dict(picked)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h = ((x + 1) * 0.5 - self.mean) / self.std
        out = []
        start = 0
        for end in _SLICE_ENDS:
            for layer in self.features[start:end]:
                h = layer(h)
            out.append(h)
            start = end
        return out


class VGGLoss(nn.Module):
    """pix2pixHD perceptual loss: sum_i w_i * L1(vgg_i(x), vgg_i(y).detach())."""

    def __init__(self, weights_path: str):
        super().__init__()
        self.vgg = VGG19Features()
        self.vgg.load_weights(weights_path)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.vgg(x), self.vgg(y)
        total = torch.zeros((), device=x.device)
        for w, a, b in zip(LAYER_WEIGHTS, fx, fy):
            total = total + w * (a.float() - b.detach().float()).abs().mean()
        return total
