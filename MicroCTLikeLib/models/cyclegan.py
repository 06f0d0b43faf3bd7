"""CycleGAN comparator (Zhu et al., ICCV 2017, arXiv:1703.10593), one channel.

Domain A = MDCT, domain B = micro-CT. Two ResNet generators (g_ab: MDCT -> micro-CT, used
for inference; g_ba), two 70x70 PatchGAN discriminators (d_b judges micro-CT, d_a judges
MDCT), least-squares GAN, cycle loss (10), identity loss (0.5 x cycle weight), a 50-image
history pool per fake domain, Adam 2e-4 betas (0.5, 0.999), N(0, 0.02) init. One
iteration = generator step (discriminators frozen) then discriminator step, as the
reference does. The learning-rate decay of the second half of the reference schedule is
the trainer's business (not done here).
"""

from __future__ import annotations


import torch
from torch import nn

from . import losses
from .base import GeneratorDiscriminatorModel, PaddedGenerator, as_floats, frozen
from .layers import PatchDiscriminator, ResnetGenerator, init_weights


class CycleGANGenerators(nn.Module):
    """Both generators; one ``forward`` computes every image of a generator step."""

    def __init__(self, *, in_ch: int, nf: int, n_down: int, n_res_blocks: int):
        super().__init__()
        self.g_ab = ResnetGenerator(in_ch, in_ch, nf=nf, n_down=n_down, n_res_blocks=n_res_blocks)
        self.g_ba = ResnetGenerator(in_ch, in_ch, nf=nf, n_down=n_down, n_res_blocks=n_res_blocks)
        self.size_multiple = self.g_ab.size_multiple

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, with_identity: bool = True) -> dict:
        n = real_a.shape[0]
        # identity images ride along in the same pass (per-sample ops: batching is exact)
        out_b = self.g_ab(torch.cat([real_a, real_b]) if with_identity else real_a)
        out_a = self.g_ba(torch.cat([real_b, real_a]) if with_identity else real_b)
        fake_b, fake_a = out_b[:n], out_a[:n]
        images = {"fake_b": fake_b, "fake_a": fake_a, "rec_a": self.g_ba(fake_b), "rec_b": self.g_ab(fake_a)}
        if with_identity:
            images["idt_b"], images["idt_a"] = out_b[n:], out_a[n:]
        return images


class CycleGANDiscriminators(nn.Module):
    """Both PatchGANs; ``forward(images_a, images_b) -> (d_a logits, d_b logits)``."""

    def __init__(self, *, in_ch: int, nf: int, n_layers: int):
        super().__init__()
        self.d_a = PatchDiscriminator(in_ch, ndf=nf, n_layers=n_layers, norm="in", padding=1)
        self.d_b = PatchDiscriminator(in_ch, ndf=nf, n_layers=n_layers, norm="in", padding=1)

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor):
        return self.d_a(images_a), self.d_b(images_b)


class ImagePool:
    """History of generated images (Shrivastava et al. 2017), as CycleGAN uses it.

    Until full, every image is stored and returned; then each image is, with probability
    0.5, swapped for a random stored one. Random numbers come from the ``generator`` given.
    """

    def __init__(self, size: int, generator: torch.Generator):
        self.size = int(size)
        self.images: list[torch.Tensor] = []
        self._rng = generator

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self._rng)) > 0.5:
                index = int(torch.randint(0, self.size, (), generator=self._rng))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)


def make_inference_generator(c: dict) -> PaddedGenerator:
    """An (untrained) MDCT -> micro-CT inference module of the config's shape (g_ab), to load a
    saved state_dict into."""
    g = ResnetGenerator(c["in_channels"], c["in_channels"], nf=c["gen_nf"], n_down=c["gen_n_down"],
                        n_res_blocks=c["gen_n_res_blocks"])
    return PaddedGenerator(g, g.size_multiple)


class CycleGANModel(GeneratorDiscriminatorModel):
    """CycleGAN between MDCT (A) and micro-CT (B); inference uses g_ab."""

    name = "cyclegan"
    paired = False

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        self.generator = init_weights(CycleGANGenerators(
            in_ch=self.in_channels, nf=c["gen_nf"], n_down=c["gen_n_down"], n_res_blocks=c["gen_n_res_blocks"]),
            "normal")
        self.discriminator = init_weights(CycleGANDiscriminators(
            in_ch=self.in_channels, nf=c["dis_nf"], n_layers=c["dis_n_layers"]), "normal")
        self.size_multiple = self.generator.size_multiple
        self.min_crop_px = max(2 * self.size_multiple, 2 ** (c["dis_n_layers"] + 1))
        self._inference = PaddedGenerator(self.generator.g_ab, self.size_multiple)
        self.pools = {"a": ImagePool(c["pool_size"], self._rng), "b": ImagePool(c["pool_size"], self._rng)}
        betas = tuple(c["betas"])
        self._optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c["lr"], betas=betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=c["lr"], betas=betas),
        }

    def extra_state(self) -> dict:
        state = super().extra_state()
        state["image_pools"] = {k: [im.detach().cpu().clone() for im in p.images] for k, p in self.pools.items()}
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        for key, images in state.get("image_pools", {}).items():
            self.pools[key].images = [im.to(self.device) for im in images]

    def training_step(self, batch: dict, step: int) -> dict:
        c = self.config
        real_a, real_b = self._check_batch(batch)
        with_identity = c["identity_w"] > 0

        self._optimizers["generator"].zero_grad(set_to_none=True)
        with self._autocast():
            im = self._net("generator")(real_a, real_b, with_identity)
            with frozen(self.discriminator):
                logits_a, logits_b = self.discriminator(im["fake_a"], im["fake_b"])
        g_gan_b = losses.lsgan_loss(logits_b, True)
        g_gan_a = losses.lsgan_loss(logits_a, True)
        cycle_a = losses.l1(im["rec_a"], real_a)
        cycle_b = losses.l1(im["rec_b"], real_b)
        g_loss = g_gan_a + g_gan_b + c["cycle_w"] * (cycle_a + cycle_b)
        idt_a = idt_b = torch.zeros((), device=real_a.device)
        if with_identity:
            idt_b = losses.l1(im["idt_b"], real_b)
            idt_a = losses.l1(im["idt_a"], real_a)
            g_loss = g_loss + c["identity_w"] * c["cycle_w"] * (idt_a + idt_b)
        self._backward_step(g_loss, "generator")

        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        fake_a = self.pools["a"].query(im["fake_a"].float())
        fake_b = self.pools["b"].query(im["fake_b"].float())
        n = real_a.shape[0]
        with self._autocast():
            logits_a, logits_b = self._net("discriminator")(torch.cat([real_a, fake_a]), torch.cat([real_b, fake_b]))
        d_a = 0.5 * (losses.lsgan_loss(logits_a[:n], True) + losses.lsgan_loss(logits_a[n:], False))
        d_b = 0.5 * (losses.lsgan_loss(logits_b[:n], True) + losses.lsgan_loss(logits_b[n:], False))
        self._backward_step(d_a + d_b, "discriminator")

        return as_floats(g_loss=g_loss, g_gan_a=g_gan_a, g_gan_b=g_gan_b, cycle_a=cycle_a, cycle_b=cycle_b,
                         idt_a=idt_a, idt_b=idt_b, d_a=d_a, d_b=d_b)
