"""GAN losses and regularisers used by the translation models.

All functions return 0-d float32 tensors (computed in float32 even under autocast) so the
logged numbers and the penalties do not suffer from half precision.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge discriminator loss terms ``mean(relu(1 - D(real)))``, ``mean(relu(1 + D(fake)))``."""
    return F.relu(1.0 - real_logits.float()).mean(), F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss ``-mean(D(fake))``."""
    return -fake_logits.float().mean()


def lsgan_loss(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss ``mean((D(x) - t)^2)`` with t = 1 (real) or 0 (fake)."""
    logits = logits.float()
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.mse_loss(logits, target)


def input_gradient(outputs: torch.Tensor, inputs: torch.Tensor, *, scaler=None) -> torch.Tensor:
    """d(sum outputs)/d(inputs) with ``create_graph`` (for R1 and gradient penalties).

    With a float16 GradScaler the output is scaled before differentiation and the gradient
    unscaled afterwards (PyTorch's AMP gradient-penalty recipe) so small gradients do not
    underflow.
    """
    total = outputs.float().sum()
    if scaler is not None:
        total = scaler.scale(total)
    (grad,) = torch.autograd.grad(total, inputs, create_graph=True)
    if scaler is not None:
        grad = grad / scaler.get_scale()
    return grad.float()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor, *, scaler=None) -> torch.Tensor:
    """R1 regulariser as in FUNIT: ``sum(|d mean(D(x)) / dx|^2) / batch``.

    ``real_images`` must require grad and ``real_logits`` must depend on it.
    Reference: Mescheder et al., ICML 2018, "Which training methods for GANs do actually
    converge?".
    """
    batch = real_images.shape[0]
    grad = input_gradient(real_logits.float().mean(), real_images, scaler=scaler)
    return grad.pow(2).sum() / batch


def gradient_penalty(logits: torch.Tensor, interpolates: torch.Tensor, *, scaler=None) -> torch.Tensor:
    """WGAN-GP penalty ``mean((|dD/dx|_2 - 1)^2)`` over samples (Gulrajani et al., 2017)."""
    grad = input_gradient(logits, interpolates, scaler=scaler)
    norm = grad.flatten(1).norm(2, dim=1)
    return (norm - 1.0).pow(2).mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference in float32."""
    return (a.float() - b.float()).abs().mean()


def multiscale_feature_matching(fake_feats: Sequence[Sequence[torch.Tensor]],
                                real_feats: Sequence[Sequence[torch.Tensor]],
                                *, weight: float, n_layers: Optional[int] = None) -> torch.Tensor:
    """pix2pixHD feature matching: sum over scales and intermediate layers (not the logits) of
    ``weight * (1 / n_scales) * (4 / (n_layers + 1)) * L1(fake_feat, real_feat.detach())``."""
    n_scales = len(fake_feats)
    total = torch.zeros((), device=fake_feats[0][0].device)
    for fake_scale, real_scale in zip(fake_feats, real_feats):
        n_layers_here = (len(fake_scale) - 2) if n_layers is None else n_layers
        layer_w = 4.0 / (n_layers_here + 1)
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + weight * layer_w / n_scales * l1(f, r.detach())
    return total


def gaussian_blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images (reflect padding, 3-sigma kernel)."""
    radius = max(1, int(math.ceil(3 * sigma_px)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def forward_consistency_loss(translation: torch.Tensor, content: torch.Tensor, *, sigma_px: float,
                             eps: float = 1e-6) -> torch.Tensor:
    """1 - normalised cross-correlation between the translation seen at the content's resolution
    and the content image, averaged over the batch.

    The micro-CT-like image blurred by the clinical scanner's point spread function (a Gaussian
    of ``sigma_px`` pixels) should look like the MDCT it came from. NCC ignores the two
    modalities' different intensity scales, so only the structure has to agree; the fine
    detail the MDCT cannot resolve is left to the adversarial loss.
    """
    blurred = gaussian_blur(translation.float(), sigma_px)
    a = blurred - blurred.mean(dim=(1, 2, 3), keepdim=True)
    b = content.float() - content.float().mean(dim=(1, 2, 3), keepdim=True)
    ncc = (a * b).sum(dim=(1, 2, 3)) / (a.pow(2).sum(dim=(1, 2, 3)).sqrt() * b.pow(2).sum(dim=(1, 2, 3)).sqrt() + eps)
    return 1.0 - ncc.mean()


def radial_log_spectrum(x: torch.Tensor, n_bins: int = 16, eps: float = 1e-6) -> torch.Tensor:
    """Log of the radially averaged power spectrum of each image, (B, C, H, W) -> (B, C, n_bins).

    The image's own mean is removed and a Hann window applied (so the crop's edges add no
    spurious high frequencies); bin k averages the power at radial frequencies in
    ((k / n_bins) * 0.5, ((k + 1) / n_bins) * 0.5] cycles per pixel (the DC term excluded).
    Shifting the structure within the crop leaves it unchanged: it describes the texture's
    scale (trabecular thickness and spacing, sharpness), not where each trabecula lies.
    """
    x = x.float()
    height, width = x.shape[-2:]
    window = (torch.hann_window(height, periodic=False, device=x.device)[:, None]
              * torch.hann_window(width, periodic=False, device=x.device)[None, :])
    centred = (x - x.mean(dim=(-2, -1), keepdim=True)) * window
    power = torch.fft.rfft2(centred, norm="ortho").abs().pow(2)
    fy = torch.fft.fftfreq(height, device=x.device)[:, None]
    fx = torch.fft.rfftfreq(width, device=x.device)[None, :]
    radius = torch.sqrt(fy ** 2 + fx ** 2)
    index = torch.ceil(radius / 0.5 * n_bins).long() - 1  # DC -> -1, Nyquist corner > n_bins - 1
    valid = (index >= 0) & (index < n_bins)
    one_hot = F.one_hot(index.clamp(0, n_bins - 1), n_bins).to(power.dtype) * valid[..., None]
    counts = one_hot.sum(dim=(0, 1)).clamp_min(1.0)
    binned = torch.einsum("bchw,hwk->bck", power, one_hot) / counts
    return torch.log(binned + eps)


def spectrum_loss(translation: torch.Tensor, target: torch.Tensor, n_bins: int = 16) -> torch.Tensor:
    """Mean absolute difference of the radial log power spectra of two image batches.

    With registered pairs (the target is the micro-CT of the same place) it asks the
    translation for the right texture scale and sharpness at each place, which the MDCT
    cannot dictate voxel by voxel: a blurred or too coarse texture has too little power at
    the trabecular frequencies, whatever the pixel-wise L1.
    """
    return (radial_log_spectrum(translation, n_bins) - radial_log_spectrum(target, n_bins)).abs().mean()
