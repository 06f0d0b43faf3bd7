"""StarGAN comparator (Choi et al., CVPR 2018, arXiv:1711.09020) with two domains.

Domain 0 = MDCT, 1 = micro-CT. The generator sees the image with one-hot target-domain
label channels concatenated (6 residual blocks); the PatchGAN discriminator has a source
(real/fake) patch head and a domain classification head. WGAN-GP (gp 10), domain
classification (cross-entropy, weight 1), cycle reconstruction (10); the discriminator is
updated every iteration and the generator every ``n_critic`` (5) iterations; Adam 1e-4
betas (0.5, 0.999). Every image is translated to the *other* domain (with two domains the
reference's random target labels would often pick the image's own domain).

Deviations, for crop-size independence: the classification head is a 3x3 convolution
averaged over the patch map (the reference uses a kernel as large as the final map), and
the instance norms keep no running statistics (train and eval behave alike).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidParameterError
from . import losses
from .base import GeneratorDiscriminatorModel, as_floats, check_input, frozen, pad_to_multiple
from .layers import ResnetGenerator

MICROCT_DOMAIN = 1


def one_hot(labels: torch.Tensor, n_domains: int) -> torch.Tensor:
    return F.one_hot(labels.long(), n_domains).float()


class StarGANGenerator(nn.Module):
    """ResNet generator on image + label maps.

    ``forward(x, c_trg)`` -> translation; ``forward(x, c_trg, c_org)`` -> (translation,
    reconstruction G(G(x, c_trg), c_org)) in one call (so DDP sees one forward per backward).
    Labels are (B, n_domains) one-hot floats.
    """

    def __init__(self, *, in_ch: int, n_domains: int, nf: int, n_down: int, n_res_blocks: int):
        super().__init__()
        self.n_domains = n_domains
        self.net = ResnetGenerator(in_ch + n_domains, in_ch, nf=nf, n_down=n_down, n_res_blocks=n_res_blocks,
                                   style="stargan")
        self.size_multiple = self.net.size_multiple

    def _translate(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        maps = c.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.net(torch.cat([x, maps], dim=1))

    def forward(self, x: torch.Tensor, c_trg: torch.Tensor, c_org=None):
        fake = self._translate(x, c_trg)
        if c_org is None:
            return fake
        return fake, self._translate(fake, c_org)


class StarGANDiscriminator(nn.Module):
    """conv4/s2 + LeakyReLU(0.01) x n_layers (channels x2) -> source patch map (conv3) and
    domain logits (conv3 averaged over the map). ``forward`` -> (src (B,1,h,w), cls (B,n))."""

    def __init__(self, *, in_ch: int, n_domains: int, nf: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, nf, 4, 2, 1), nn.LeakyReLU(0.01)]
        ch = nf
        for _ in range(1, n_layers):
            layers += [nn.Conv2d(ch, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.cls = nn.Conv2d(ch, n_domains, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor):
        h = self.main(x)
        return self.src(h), self.cls(h).mean(dim=(2, 3))


class StarGANTranslator(nn.Module):
    """Inference: MDCT -> micro-CT (target label fixed), padded to the size multiple."""

    def __init__(self, generator: StarGANGenerator):
        super().__init__()
        self.generator = generator
        self.size_multiple = generator.size_multiple

    def forward(self, mdct: torch.Tensor) -> torch.Tensor:
        check_input(mdct)
        x, (h, w) = pad_to_multiple(mdct, self.size_multiple)
        labels = torch.full((x.shape[0],), MICROCT_DOMAIN, device=x.device)
        return self.generator(x, one_hot(labels, self.generator.n_domains))[..., :h, :w]


def make_generator(c: dict) -> StarGANGenerator:
    """The StarGAN generator a config describes (PyTorch default init, as the reference)."""
    return StarGANGenerator(in_ch=c["in_channels"], n_domains=c["n_domains"], nf=c["gen_nf"],
                            n_down=c["gen_n_down"], n_res_blocks=c["gen_n_res_blocks"])


def make_inference_generator(c: dict) -> StarGANTranslator:
    """An (untrained) inference module of the config's shape, to load a saved state_dict into."""
    return StarGANTranslator(make_generator(c))


class StarGANModel(GeneratorDiscriminatorModel):
    """StarGAN with WGAN-GP between MDCT and micro-CT."""

    name = "stargan"
    paired = False
    _G_KEYS = ("g_loss", "g_fake", "g_cls", "g_rec")

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        nd = c["n_domains"]
        if nd != 2:
            raise InvalidParameterError(f"StarGAN here translates between 2 domains (MDCT, micro-CT); got {nd}")
        self.generator = make_generator(c)
        self.discriminator = StarGANDiscriminator(in_ch=self.in_channels, n_domains=nd, nf=c["dis_nf"],
                                                  n_layers=c["dis_n_layers"])
        self.size_multiple = self.generator.size_multiple
        self.min_crop_px = max(2 * self.generator.size_multiple, 2 ** c["dis_n_layers"])
        self._inference = StarGANTranslator(self.generator)
        betas = tuple(c["betas"])
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c["lr_gen"], betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c["lr_dis"], betas=betas),
        }
        self._last_g = {k: 0.0 for k in self._G_KEYS}

    def extra_state(self) -> dict:
        state = super().extra_state()
        state["last_g_losses"] = dict(self._last_g)
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self._last_g = {k: float(v) for k, v in state.get("last_g_losses", self._last_g).items()}

    def training_step(self, batch: dict, step: int) -> dict:
        """D update every step; G update when ``(step + 1) % n_critic == 0``.

        Returns the D losses, the G losses of the most recent G update (0 before the first)
        and ``g_updated`` (1.0 when this step updated G).
        """
        c = self.config
        mdct, microct = self._check_batch(batch)
        n = mdct.shape[0]
        x = torch.cat([mdct, microct])
        org = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]).to(x.device)
        trg = 1 - org
        c_org, c_trg = one_hot(org, 2), one_hot(trg, 2)

        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        with torch.no_grad(), self._autocast():
            fake = self.generator(x, c_trg).float()
        alpha = self._rand(2 * n, 1, 1, 1)
        x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
        with self._autocast():
            src, cls = self._net("discriminator")(torch.cat([x, fake, x_hat]))
        m = 2 * n
        d_real = -src[:m].float().mean()
        d_fake = src[m:2 * m].float().mean()
        d_cls = F.cross_entropy(cls[:m].float(), org)
        gp = losses.gradient_penalty(src[2 * m:], x_hat, scaler=self._scaler("discriminator"))
        d_loss = d_real + d_fake + c["cls_w"] * d_cls + c["gp_w"] * gp
        self._backward_step(d_loss, "discriminator")
        out = as_floats(d_loss=d_loss, d_real=d_real, d_fake=d_fake, d_cls=d_cls, gp=gp)

        updated = (step + 1) % c["n_critic"] == 0
        if updated:
            self._optimizers["generator"].zero_grad(set_to_none=True)
            with self._autocast():
                fake, rec = self._net("generator")(x, c_trg, c_org)
                with frozen(self.discriminator):
                    src, cls = self.discriminator(fake)
            g_fake = -src.float().mean()
            g_cls = F.cross_entropy(cls.float(), trg)
            g_rec = losses.l1(rec, x)
            g_loss = g_fake + c["rec_w"] * g_rec + c["cls_w"] * g_cls
            self._backward_step(g_loss, "generator")
            self._last_g = as_floats(g_loss=g_loss, g_fake=g_fake, g_cls=g_cls, g_rec=g_rec)
        out.update(self._last_g)
        out["g_updated"] = 1.0 if updated else 0.0
        return out
