"""pix2pixHD comparator (Wang et al., CVPR 2018, arXiv:1711.11585), paired, one channel.

Global generator (conv7, 4 stride-2 convs, 9 residual blocks, 4 transposed convs, conv7,
instance norm), multi-scale conditional PatchGAN discriminators (2 scales, 3 layers, on
[MDCT, image] pairs), least-squares GAN, discriminator feature matching (10) and, only when
``vgg_weights_path`` names a local VGG19 weights file, the VGG perceptual loss (10).
Adam 2e-4 betas (0.5, 0.999), N(0, 0.02) init. One iteration = generator step then
discriminator step. Trained on aligned (MDCT, micro-CT) slice pairs: ``paired = True``.
No local enhancer, instance maps or encoded features (the global generator only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import losses
from .base import GeneratorDiscriminatorModel, PaddedGenerator, as_floats, frozen
from .layers import PatchDiscriminator, ResnetGenerator, init_weights


class MultiscaleDiscriminator(nn.Module):
    """``n_scales`` PatchGANs on the input average-pooled by 1, 2, 4, ... ;
    ``forward`` -> list (per scale, finest first) of lists of layer outputs (last = logits)."""

    def __init__(self, in_ch: int, *, ndf: int, n_layers: int, n_scales: int):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_ch, ndf=ndf, n_layers=n_layers, norm="in", padding=2, return_features=True)
            for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def _split(feats: list[list[torch.Tensor]], n: int):
    """Split every layer output of a stacked (first n | rest) batch into two nested lists."""
    first = [[f[:n] for f in scale] for scale in feats]
    second = [[f[n:] for f in scale] for scale in feats]
    return first, second


def _lsgan_multiscale(feats: list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
    return sum(losses.lsgan_loss(scale[-1], target_is_real) for scale in feats)


def make_generator(c: dict) -> ResnetGenerator:
    """The global generator a config describes (N(0, 0.02)-initialised)."""
    ch = c["in_channels"]
    return init_weights(ResnetGenerator(ch, ch, nf=c["gen_nf"], n_down=c["gen_n_down"],
                                        n_res_blocks=c["gen_n_res_blocks"]), "normal")


def make_inference_generator(c: dict) -> PaddedGenerator:
    """An (untrained) inference module of the config's shape, to load a saved state_dict into."""
    generator = make_generator(c)
    return PaddedGenerator(generator, generator.size_multiple)


class Pix2PixHDModel(GeneratorDiscriminatorModel):
    """pix2pixHD global generator trained on paired MDCT / micro-CT slices."""

    name = "pix2pixhd"
    paired = True

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        ch = self.in_channels
        self.generator = make_generator(c)
        self.discriminator = init_weights(MultiscaleDiscriminator(
            2 * ch, ndf=c["dis_nf"], n_layers=c["dis_n_layers"], n_scales=c["dis_n_scales"]), "normal")
        self.size_multiple = self.generator.size_multiple
        self.min_crop_px = 2 * self.size_multiple
        self._inference = PaddedGenerator(self.generator, self.size_multiple)
        self.vgg_loss = None
        if c["vgg_weights_path"]:
            from .vgg import VGGLoss
            self.vgg_loss = VGGLoss(c["vgg_weights_path"])
        betas = tuple(c["betas"])
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c["lr"], betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c["lr"], betas=betas),
        }

    def training_step(self, batch: dict, step: int) -> dict:
        c = self.config
        label, real = self._check_batch(batch)  # aligned pairs: MDCT -> micro-CT
        n = label.shape[0]

        self._optimizers["generator"].zero_grad(set_to_none=True)
        with self._autocast():
            fake = self._net("generator")(label)
            with frozen(self.discriminator):
                fake_feats = self.discriminator(torch.cat([label, fake], 1))
                with torch.no_grad():  # targets of the feature matching
                    real_feats = self.discriminator(torch.cat([label, real], 1))
        g_gan = _lsgan_multiscale(fake_feats, True)
        g_fm = losses.multiscale_feature_matching(fake_feats, real_feats, weight=c["fm_w"])
        g_loss = g_gan + g_fm
        g_vgg = torch.zeros((), device=label.device)
        if self.vgg_loss is not None:
            with self._autocast():
                g_vgg = c["vgg_w"] * self.vgg_loss(fake, real)
            g_loss = g_loss + g_vgg
        self._backward_step(g_loss, "generator")

        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        pairs = torch.cat([torch.cat([label, fake.detach().float()], 1), torch.cat([label, real], 1)])
        with self._autocast():
            feats = self._net("discriminator")(pairs)
        fake_feats, real_feats = _split(feats, n)
        d_fake = _lsgan_multiscale(fake_feats, False)
        d_real = _lsgan_multiscale(real_feats, True)
        d_loss = 0.5 * (d_fake + d_real)
        self._backward_step(d_loss, "discriminator")

        return as_floats(g_loss=g_loss, g_gan=g_gan, g_fm=g_fm, g_vgg=g_vgg, d_loss=d_loss, d_fake=d_fake,
                         d_real=d_real)
