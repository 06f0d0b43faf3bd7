"""Building blocks shared by the translation networks.

Convolution blocks with explicit padding, residual blocks (plain, AdaIN and
activation-first), instance normalisation without affine parameters, a functional AdaIN, the
N-layer PatchGAN discriminator (70x70 receptive field with 3 layers) and weight
initialisers. Every block works on NCHW tensors in either memory format (no ``view`` on
activations), so ``model.to(memory_format=torch.channels_last)`` is safe.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError

_PADDINGS = {"reflect": nn.ReflectionPad2d, "zero": nn.ZeroPad2d, "replicate": nn.ReplicationPad2d}


def make_norm(kind: str, channels: int) -> nn.Module:
    """Normalisation layer by name: ``"in"`` (instance, no affine, no running stats),
    ``"in_affine"`` (instance with learned scale/shift), ``"none"``."""
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "in_affine":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise InvalidParameterError(f"unknown normalisation {kind!r}; use 'in', 'in_affine' or 'none'")


def make_activation(kind: str, *, slope: float = 0.2) -> nn.Module:
    """Activation by name: ``relu``, ``lrelu`` (negative slope ``slope``), ``tanh``, ``none``."""
    if kind == "relu":
        return nn.ReLU()
    if kind == "lrelu":
        return nn.LeakyReLU(slope)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise InvalidParameterError(f"unknown activation {kind!r}; use 'relu', 'lrelu', 'tanh' or 'none'")


class ConvBlock(nn.Module):
    """pad -> conv -> norm -> activation (or activation -> pad -> conv with ``act_first``).

    Parameters
    ----------
    in_ch, out_ch : int
        Channels.
    kernel, stride, padding : int
        Convolution geometry; the padding is an explicit layer of type ``pad``.
    norm : str
        See :func:`make_norm`.
    act : str
        See :func:`make_activation`.
    pad : str
        ``reflect``, ``zero`` or ``replicate``.
    bias : bool
        Convolution bias.
    act_first : bool
        Pre-activation block (FUNIT discriminator); the norm then still follows the conv.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, *, stride: int = 1, padding: int = 0,
                 norm: str = "none", act: str = "relu", pad: str = "zero", bias: bool = True,
                 act_first: bool = False, slope: float = 0.2):
        super().__init__()
        if pad not in _PADDINGS:
            raise InvalidParameterError(f"unknown padding {pad!r}; use one of {sorted(_PADDINGS)}")
        self.act_first = act_first
        self.pad = _PADDINGS[pad](padding) if padding else nn.Identity()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, bias=bias)
        self.norm = make_norm(norm, out_ch)
        self.act = make_activation(act, slope=slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_first:
            return self.norm(self.conv(self.pad(self.act(x))))
        return self.act(self.norm(self.conv(self.pad(x))))


class ResBlock(nn.Module):
    """x + [conv3 -> norm -> act -> conv3 -> norm] (pix2pix/CycleGAN/FUNIT content block)."""

    def __init__(self, ch: int, *, norm: str = "in", act: str = "relu", pad: str = "reflect",
                 bias: bool = True):
        super().__init__()
        self.block = nn.Sequential(
            ConvBlock(ch, ch, 3, padding=1, norm=norm, act=act, pad=pad, bias=bias),
            ConvBlock(ch, ch, 3, padding=1, norm=norm, act="none", pad=pad, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, eps: float = 1e-5,
          normalize: bool = True) -> torch.Tensor:
    """Adaptive instance normalisation: ``instance_norm(x) * gamma + beta``.

    Parameters
    ----------
    x : Tensor (B, C, H, W)
    gamma, beta : Tensor (B, C)
        Per-sample scale and shift (FUNIT's MLP output; the scale is used as given, not 1 + gamma).
    normalize : bool
        False skips the instance normalisation (feature-wise modulation ``x * gamma + beta``):
        the per-image mean and contrast of ``x`` then survive, which is what carries the bone
        density level of a crop lying wholly inside cancellous bone.
    """
    if normalize:
        x = F.instance_norm(x, eps=eps)
    return x * gamma[:, :, None, None] + beta[:, :, None, None]


class AdaINResBlock(nn.Module):
    """x + [conv3 -> AdaIN -> ReLU -> conv3 -> AdaIN] with reflect padding (FUNIT decoder).

    The AdaIN parameters come from the caller, so the block holds no per-call state.
    ``n_adain_params`` = 4 * ch: (beta, gamma) for each of the two normalisations.
    """

    def __init__(self, ch: int, *, normalize: bool = True):
        super().__init__()
        self.ch = ch
        self.normalize = normalize
        self.conv1 = ConvBlock(ch, ch, 3, padding=1, act="none", pad="reflect")
        self.conv2 = ConvBlock(ch, ch, 3, padding=1, act="none", pad="reflect")

    @property
    def n_adain_params(self) -> int:
        return 4 * self.ch

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        c = self.ch
        # layout per normalisation: [beta (mean) | gamma (std)], as FUNIT assigns them
        h = adain(self.conv1(x), params[:, c:2 * c], params[:, :c], normalize=self.normalize)
        h = F.relu(h)
        h = adain(self.conv2(h), params[:, 3 * c:4 * c], params[:, 2 * c:3 * c], normalize=self.normalize)
        return x + h


class ActFirstResBlock(nn.Module):
    """Pre-activation residual block of the FUNIT discriminator.

    ``out = skip + conv3(lrelu(conv3(lrelu(x))))`` with reflect padding, hidden width
    ``min(fin, fout)`` and a learned bias-free 1x1 shortcut when ``fin != fout``.

    Parameters
    ----------
    fin, fout : int
        Input and output channels.
    reference_inplace : bool
        Reproduce the reference implementation's in-place LeakyReLU: there the first
        activation overwrites ``x``, so an *identity* skip carries ``lrelu(x)`` instead of
        ``x`` (a learned shortcut is computed before the activation and is unaffected).
        The same values and gradients are computed here without in-place ops.
    """

    def __init__(self, fin: int, fout: int, *, reference_inplace: bool = True, slope: float = 0.2):
        super().__init__()
        hidden = min(fin, fout)
        self.reference_inplace = reference_inplace
        self.slope = slope
        self.conv_0 = ConvBlock(fin, hidden, 3, padding=1, pad="reflect", act="none")
        self.conv_1 = ConvBlock(hidden, fout, 3, padding=1, pad="reflect", act="none")
        self.shortcut: Optional[nn.Module] = (
            nn.Conv2d(fin, fout, 1, bias=False) if fin != fout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.leaky_relu(x, self.slope)
        if self.shortcut is not None:
            skip = self.shortcut(x)
        else:
            skip = a if self.reference_inplace else x
        dx = self.conv_1(F.leaky_relu(self.conv_0(a), self.slope))
        return skip + dx


class PatchDiscriminator(nn.Module):
    """N-layer PatchGAN (pix2pix / CycleGAN / pix2pixHD).

    conv4/s2 (ndf, LeakyReLU 0.2, no norm) -> (n_layers-1) x conv4/s2 (x2 channels, capped at
    8 ndf, norm, LeakyReLU) -> conv4/s1 (norm, LeakyReLU) -> conv4/s1 to 1 channel. With
    ``n_layers=3`` the receptive field is 70x70.

    Parameters
    ----------
    in_ch : int
    ndf : int
    n_layers : int
    norm : str
        ``"in"`` (CycleGAN / pix2pixHD default) or ``"none"``.
    padding : int
        1 for pix2pix/CycleGAN, 2 for pix2pixHD (``ceil((4 - 1) / 2)``).
    return_features : bool
        forward returns the list of every layer's output (pix2pixHD feature matching);
        otherwise the last (patch logits).
    """

    def __init__(self, in_ch: int, *, ndf: int = 64, n_layers: int = 3, norm: str = "in",
                 padding: int = 1, return_features: bool = False):
        super().__init__()
        if n_layers < 1:
            raise InvalidParameterError(f"n_layers must be >= 1, got {n_layers}")
        layers = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, padding), nn.LeakyReLU(0.2))]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, padding),
                make_norm(norm, ndf * mult), nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(ndf * mult, 1, 4, 1, padding)))
        self.layers = nn.ModuleList(layers)
        self.return_features = return_features

    def forward(self, x: torch.Tensor):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats if self.return_features else x


def init_weights(module: nn.Module, kind: str, *, gain: float = 0.02) -> nn.Module:
    """Initialise conv / linear weights in place and return the module.

    ``kind``: ``"kaiming"`` (normal, fan_in, a=0; FUNIT), ``"normal"`` (N(0, gain);
    pix2pix, CycleGAN, pix2pixHD), ``"default"`` (PyTorch's own; StarGAN). Biases -> 0;
    affine norm weights -> N(1, gain) for ``"normal"``.
    """
    if kind == "default":
        return module
    if kind not in ("kaiming", "normal"):
        raise InvalidParameterError(f"unknown init {kind!r}; use 'kaiming', 'normal' or 'default'")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine and kind == "normal":
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module


def count_parameters(*modules: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``) of the given modules, shared ones once."""
    seen = set()
    total = 0
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


class ResnetGenerator(nn.Module):
    """Encoder - residual blocks - decoder generator (Johnson et al. 2016 style).

    conv7 (nf) -> n_down x conv/s2 (x2 channels) -> n_res_blocks residual blocks ->
    n_down x transposed conv/s2 (/2 channels) -> conv7 -> tanh, with norm + ReLU after every
    conv but the last. ``style`` picks the published variant:

    * ``"cyclegan"``: reflect padding, instance norm without affine, biases, conv3 down,
      transposed conv3 (output_padding 1) up; CycleGAN's ResNet-9 and pix2pixHD's global
      generator (with n_down 2 or 4).
    * ``"stargan"``: zero padding, affine instance norm, no biases, conv4 down, transposed
      conv4 up (StarGAN).

    Output size equals input size when H and W are multiples of ``size_multiple``.
    """

    def __init__(self, in_ch: int, out_ch: int, *, nf: int = 64, n_down: int = 2, n_res_blocks: int = 9,
                 style: str = "cyclegan"):
        super().__init__()
        if style == "cyclegan":
            pad, norm, bias, k_down, k_up, out_pad = "reflect", "in", True, 3, 3, 1
        elif style == "stargan":
            pad, norm, bias, k_down, k_up, out_pad = "zero", "in_affine", False, 4, 4, 0
        else:
            raise InvalidParameterError(f"unknown generator style {style!r}; use 'cyclegan' or 'stargan'")
        self.size_multiple = 2 ** n_down
        layers: list[nn.Module] = [ConvBlock(in_ch, nf, 7, padding=3, norm=norm, act="relu", pad=pad, bias=bias)]
        ch = nf
        for _ in range(n_down):
            layers.append(ConvBlock(ch, 2 * ch, k_down, stride=2, padding=1, norm=norm, act="relu", pad=pad,
                                    bias=bias))
            ch *= 2
        layers += [ResBlock(ch, norm=norm, act="relu", pad=pad, bias=bias) for _ in range(n_res_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, k_up, stride=2, padding=1, output_padding=out_pad,
                                          bias=bias),
                       make_norm(norm, ch // 2), nn.ReLU()]
            ch //= 2
        layers.append(ConvBlock(ch, out_ch, 7, padding=3, act="tanh", pad=pad, bias=bias))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
