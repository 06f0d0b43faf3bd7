"""FUNIT: few-shot unsupervised image-to-image translation, reimplemented for one channel.

Liu et al., "Few-Shot Unsupervised Image-to-Image Translation", ICCV 2019
(arXiv:1905.01723). Written from the paper and the architecture description in SCIENCE.md
section 6; the reference code is CC BY-NC-SA and was not copied.

Classes: 0 = MDCT, 1 = micro-CT. Content images are MDCT slices, class images micro-CT
slices (K = 1 target class, as in the study). At default widths the generator has
29,847,617 and the discriminator 54,126,402 trainable parameters (1 channel, 2 classes).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import InvalidParameterError, MicroCTLikeError
from . import losses
from .base import (TranslationModel, as_floats, check_image_size, check_input, ema_update, frozen,
                   pad_to_multiple)
from .layers import ActFirstResBlock, AdaINResBlock, ConvBlock, ResBlock, count_parameters, init_weights

MDCT_CLASS = 0
MICROCT_CLASS = 1


class FUNITGenerator(nn.Module):
    """Content encoder + class encoder + MLP + AdaIN decoder.

    Parameters
    ----------
    in_ch : int
        Image channels (1).
    nf : int
        Width of the first layer of both encoders (reference 64).
    latent_dim : int
        Class code length (64).
    mlp_dim : int
        Hidden width of the MLP mapping the class code to AdaIN parameters (256).
    n_mlp_blocks : int
        Linear layers of the MLP (3: latent -> mlp -> mlp -> AdaIN params).
    n_res_blocks : int
        Residual blocks in the content encoder and AdaIN residual blocks in the decoder (2).
    n_down_content, n_down_class : int
        Stride-2 convolutions of the content (3) and class (4) encoders.
    norm : {"instance", "none"}
        "instance" (the reference): instance normalisation in the content encoder and the
        decoder, AdaIN in the decoder's residual blocks. "none" (our level-preserving
        variant): no normalisation in the content encoder and the decoder's upsampling
        blocks, and the decoder's residual blocks modulate without normalising (``x * gamma
        + beta``). Instance normalisation of a crop lying wholly inside cancellous bone
        divides out its mean and contrast, i.e. the bone density the MDCT carries.
    level_skip : bool
        Our option (default False, the reference): the content image itself is fed, beside
        the decoder's features, to the final convolution, so the local density of the MDCT
        reaches the output however the normalisations rescaled the features. Adds
        ``in_ch * 49`` weights to the final conv7.
    context_slices : int
        Our option (default 0, the reference: one slice in, one slice out). N > 0 makes the
        generator 2.5-D: the content encoder takes ``(2N+1) * in_ch`` channels, the
        translated slice with N neighbouring slices on each side, ordered from the lowest
        slice index to the highest (the translated slice is the centre, see :meth:`centre`).
        Only the first convolution of the content encoder grows (by ``2N * in_ch * nf * 49``
        weights); the class encoder, the level skip and the output keep ``in_ch`` channels:
        wherever the MDCT is used as an image, its centre channel is. The neighbours let the
        encoder see structure along z (horizontal plates) that one axial slice cannot show.
    """

    def __init__(self, *, in_ch: int = 1, nf: int = 64, latent_dim: int = 64, mlp_dim: int = 256,
                 n_mlp_blocks: int = 3, n_res_blocks: int = 2, n_down_content: int = 3,
                 n_down_class: int = 4, norm: str = "instance", level_skip: bool = False,
                 context_slices: int = 0):
        super().__init__()
        if n_mlp_blocks < 2:
            raise InvalidParameterError(f"n_mlp_blocks must be >= 2, got {n_mlp_blocks}")
        if isinstance(context_slices, bool) or not isinstance(context_slices, int) or context_slices < 0:
            raise InvalidParameterError(f"context_slices must be an integer >= 0, got {context_slices!r}")
        self.in_ch = int(in_ch)
        self.context_slices = context_slices
        #: channels of the content input: the translated slice and its context slices
        self.content_in_ch = in_ch * (2 * context_slices + 1)
        if norm not in ("instance", "none"):
            raise InvalidParameterError(f"FUNIT generator norm must be 'instance' or 'none', got {norm!r}")
        layer_norm = "in" if norm == "instance" else "none"
        self.size_multiple = 2 ** n_down_content
        # content encoder: conv7 -> n_down x conv4/s2 (x2 channels) -> res blocks; IN + ReLU
        ch = nf
        content = [ConvBlock(self.content_in_ch, ch, 7, padding=3, norm=layer_norm, act="relu", pad="reflect")]
        for _ in range(n_down_content):
            content.append(ConvBlock(ch, 2 * ch, 4, stride=2, padding=1, norm=layer_norm, act="relu", pad="reflect"))
            ch *= 2
        content += [ResBlock(ch, norm=layer_norm, act="relu", pad="reflect") for _ in range(n_res_blocks)]
        self.content_encoder = nn.Sequential(*content)
        content_ch = ch
        # class encoder: conv7 -> 2 doubling + (n-2) constant conv4/s2, no norm -> GAP -> 1x1
        ch = nf
        cls = [ConvBlock(in_ch, ch, 7, padding=3, act="relu", pad="reflect")]
        for i in range(n_down_class):
            out = 2 * ch if i < 2 else ch
            cls.append(ConvBlock(ch, out, 4, stride=2, padding=1, act="relu", pad="reflect"))
            ch = out
        cls += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, latent_dim, 1)]
        self.class_encoder = nn.Sequential(*cls)
        # decoder: AdaIN res blocks -> n_down x (nearest x2, conv5, IN, ReLU) -> conv7 + tanh
        ch = content_ch
        self.adain_blocks = nn.ModuleList(AdaINResBlock(ch, normalize=norm == "instance") for _ in range(n_res_blocks))
        up = []
        for _ in range(n_down_content):
            up += [nn.Upsample(scale_factor=2, mode="nearest"),
                   ConvBlock(ch, ch // 2, 5, padding=2, norm=layer_norm, act="relu", pad="reflect")]
            ch //= 2
        # the final conv7 + tanh ends the upsampler (the reference layout, so its checkpoints
        # keep loading); with the level skip it is a layer of its own that also sees the input
        self.level_skip = bool(level_skip)
        to_image = ConvBlock(ch + (in_ch if self.level_skip else 0), in_ch, 7, padding=3, act="tanh", pad="reflect")
        if self.level_skip:
            self.upsampler = nn.Sequential(*up)
            self.to_image = to_image
        else:
            self.upsampler = nn.Sequential(*up, to_image)
        self.n_adain_params = sum(b.n_adain_params for b in self.adain_blocks)
        mlp: list[nn.Module] = [nn.Linear(latent_dim, mlp_dim), nn.ReLU()]
        for _ in range(n_mlp_blocks - 2):
            mlp += [nn.Linear(mlp_dim, mlp_dim), nn.ReLU()]
        mlp.append(nn.Linear(mlp_dim, self.n_adain_params))
        self.mlp = nn.Sequential(*mlp)

    def centre(self, content_images: torch.Tensor) -> torch.Tensor:
        """The translated slice (B, in_ch, H, W) of a content input (B, content_in_ch, H, W).

        Without context slices this is the input itself.
        """
        if not self.context_slices:
            return content_images
        first = self.context_slices * self.in_ch
        return content_images[:, first:first + self.in_ch]

    def check_content(self, content_images: torch.Tensor) -> None:
        """Raise InvalidParameterError unless the content input has ``content_in_ch`` channels."""
        if content_images.ndim != 4 or content_images.shape[1] != self.content_in_ch:
            context = (f": the MDCT slice and {self.context_slices} context slice(s) on each side"
                       if self.context_slices else "")
            raise InvalidParameterError(
                f"the FUNIT content encoder takes (B, {self.content_in_ch}, H, W){context}; "
                f"got {tuple(content_images.shape)}")

    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        """(B, content_in_ch, H, W) image(s) -> (B, nf * 2**n_down, H / 2**n_down, W / 2**n_down) content code."""
        return self.content_encoder(x)

    def encode_class(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, latent_dim) class code."""
        return self.class_encoder(x).flatten(1)

    def decode(self, content: torch.Tensor, class_code: torch.Tensor,
               content_images: torch.Tensor | None = None) -> torch.Tensor:
        """Content code + class code (B, latent_dim) -> image in [-1, 1].

        ``content_images`` (the encoder's input, context slices included) is required with
        ``level_skip`` and unused otherwise; the skip takes its centre slice.
        """
        params = self.mlp(class_code)
        h = content
        start = 0
        for block in self.adain_blocks:
            h = block(h, params[:, start:start + block.n_adain_params])
            start += block.n_adain_params
        h = self.upsampler(h)
        if not self.level_skip:
            return h
        if content_images is None:
            raise InvalidParameterError("a level-skip FUNIT generator needs the content images to decode")
        return self.to_image(torch.cat([h, self.centre(content_images).to(h.dtype)], dim=1))

    def translate(self, content_images: torch.Tensor, class_code: torch.Tensor) -> torch.Tensor:
        """Content images (B, content_in_ch, H, W) + class code (B, latent_dim) -> translation
        (B, in_ch, H, W) in [-1, 1]."""
        self.check_content(content_images)
        return self.decode(self.encode_content(content_images), class_code, content_images)

    def forward(self, content_images: torch.Tensor, class_images: torch.Tensor):
        """Training pass: (translation G(x_a, x_b), reconstruction G(x_a, x_a)).

        ``content_images`` (B, content_in_ch, H, W), ``class_images`` (B, in_ch, H, W); the
        reconstruction's class code comes from the centre slice of the content images. One
        call uses every parameter, so the module can be wrapped in DDP.
        """
        self.check_content(content_images)
        batch = content_images.shape[0]
        content = self.encode_content(content_images)
        codes = self.encode_class(torch.cat([class_images, self.centre(content_images)]))
        images = self.decode(torch.cat([content, content]), codes, torch.cat([content_images, content_images]))
        return images[:batch], images[batch:]


class FUNITDiscriminator(nn.Module):
    """Multi-task patch discriminator with one output map per class and pre-activation
    residual blocks.

    conv7 (nf) -> n_down x [ActFirstRes(nf, nf), ActFirstRes(nf, min(2nf, max_nf)),
    reflect-pad 1 + avg-pool 3/2] -> ActFirstRes(nf, nf) -> ActFirstRes(nf, min(2nf, max_nf))
    -> LeakyReLU(0.2) -> 1x1 conv to ``n_classes`` maps.

    Parameters
    ----------
    reference_inplace : bool
        True (default) reproduces the reference code's in-place LeakyReLU: identity skips
        carry ``lrelu(x)``, and the features returned for feature matching are taken after
        the classifier's LeakyReLU. False gives textbook pre-activation blocks and
        pre-activation features. See :class:`~.layers.ActFirstResBlock`.
    """

    def __init__(self, *, in_ch: int = 1, nf: int = 64, n_down: int = 4, max_nf: int = 1024,
                 n_classes: int = 2, reference_inplace: bool = True):
        super().__init__()
        self.reference_inplace = reference_inplace
        self.n_classes = n_classes
        self.min_size = 2 ** (n_down + 1)  # reflect padding needs >= 2 px at the last level
        layers: list[nn.Module] = [ConvBlock(in_ch, nf, 7, padding=3, act="none", pad="reflect")]
        for _ in range(n_down):
            out = min(2 * nf, max_nf)
            layers += [ActFirstResBlock(nf, nf, reference_inplace=reference_inplace),
                       ActFirstResBlock(nf, out, reference_inplace=reference_inplace),
                       nn.ReflectionPad2d(1), nn.AvgPool2d(3, stride=2)]
            nf = out
        out = min(2 * nf, max_nf)
        layers += [ActFirstResBlock(nf, nf, reference_inplace=reference_inplace),
                   ActFirstResBlock(nf, out, reference_inplace=reference_inplace)]
        self.features = nn.Sequential(*layers)
        self.act = nn.LeakyReLU(0.2)
        self.classifier = nn.Conv2d(out, n_classes, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor):
        """Return (logits (B, 1, h, w) of each sample's own class, features (B, C, h, w))."""
        if x.shape[-1] < self.min_size or x.shape[-2] < self.min_size:
            raise InvalidParameterError(
                f"FUNIT discriminator needs images of at least {self.min_size} px; got {tuple(x.shape[-2:])}")
        feat = self.features(x)
        act = self.act(feat)
        maps = self.classifier(act)
        index = labels.long().view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[-2:])
        return maps.gather(1, index), (act if self.reference_inplace else feat)


class FUNITTranslator(nn.Module):
    """Inference module: EMA generator + stored K-shot averaged micro-CT class code.

    ``forward(mdct)`` pads to the generator's size multiple, translates with the stored code
    and crops back. ``mdct`` is (B, 1, H, W), or (B, 2N+1, H, W) slabs for a generator with
    ``context_slices = N`` (see :func:`MicroCTLikeLib.train.data.context_indices`); the
    output is (B, 1, H, W). ``state_dict`` holds ``generator.*``, ``class_code`` (1, latent_dim) and
    ``n_class_images`` (0 until :meth:`set_class_code` ran).
    """

    def __init__(self, generator: FUNITGenerator, latent_dim: int):
        super().__init__()
        self.generator = generator
        self.size_multiple = generator.size_multiple
        self.context_slices = generator.context_slices
        self.register_buffer("class_code", torch.zeros(1, latent_dim))
        self.register_buffer("n_class_images", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def set_class_code(self, class_images: torch.Tensor, *, chunk: int = 16) -> None:
        """Store the mean class code of ``class_images`` (N, 1, H, W) in [-1, 1] (K = N shots)."""
        check_input(class_images)
        if class_images.shape[0] == 0:
            raise InvalidParameterError("update_class_code needs at least one micro-CT image")
        device = self.class_code.device
        total = torch.zeros_like(self.class_code[0], dtype=torch.float64)
        for start in range(0, class_images.shape[0], chunk):
            part = class_images[start:start + chunk].to(device, torch.float32)
            total += self.generator.encode_class(part).double().sum(0)
        self.class_code.copy_((total / class_images.shape[0]).to(self.class_code.dtype)[None])
        self.n_class_images.fill_(class_images.shape[0])

    def forward(self, mdct: torch.Tensor) -> torch.Tensor:
        check_input(mdct, channels=self.generator.content_in_ch)
        if int(self.n_class_images) == 0:
            raise MicroCTLikeError(
                "the FUNIT generator has no micro-CT class code yet; call "
                "model.update_class_code(microct_slices) before using it for inference")
        x, (h, w) = pad_to_multiple(mdct, self.size_multiple)
        code = self.class_code.to(x.dtype).expand(x.shape[0], -1)
        return self.generator.translate(x, code)[..., :h, :w]


def make_generator(c: dict) -> FUNITGenerator:
    """The FUNIT generator a config describes (Kaiming-initialised)."""
    return init_weights(FUNITGenerator(
        in_ch=c["in_channels"], nf=c["gen_nf"], latent_dim=c["gen_latent_dim"], mlp_dim=c["gen_mlp_dim"],
        n_mlp_blocks=c["gen_n_mlp_blocks"], n_res_blocks=c["gen_n_res_blocks"],
        n_down_content=c["gen_n_down_content"], n_down_class=c["gen_n_down_class"],
        norm=c.get("gen_norm", "instance"), level_skip=c.get("gen_level_skip", False),
        context_slices=int(c.get("context_slices", 0))), "kaiming")


def make_inference_generator(c: dict) -> FUNITTranslator:
    """An (untrained) inference module of the config's shape, to load a saved state_dict into."""
    return FUNITTranslator(make_generator(c).requires_grad_(False), c["gen_latent_dim"])


class FUNITModel(TranslationModel):
    """FUNIT trained MDCT (content) -> micro-CT (class), hinge GAN + R1 + L1 + feature matching.

    One iteration = discriminator step then generator step (the reference order), then the
    EMA update of ``generator_ema`` (beta ``ema_beta``), which inference uses.

    ``forward_w > 0`` adds our forward-model consistency term (not in FUNIT): 1 - NCC between
    the translation blurred by a Gaussian of ``forward_sigma_px`` (the clinical scanner's
    point spread function at the training pixel size) and the MDCT content image
    (:func:`~MicroCTLikeLib.models.losses.forward_consistency_loss`). With the default 0 the
    model is the reference FUNIT; the term is logged as ``forward_ncc`` either way.

    Two more options of ours, also off by default:

    * ``gen_norm="none"`` and/or ``gen_level_skip=True``: generators that keep the MDCT's
      density level (see :class:`FUNITGenerator`).
    * ``paired_w > 0``: the model trains on *registered* pairs (the simulator's geometry, or
      real scans after registration) and adds ``paired_w * L1(translation, micro-CT of the
      same place)``. The class code of each translation then comes from another sample's
      micro-CT crop of the batch, so the code never carries the target's own structure
      (at inference the stored mean code is used). ``paired`` is True exactly then.
      Logged as ``paired_l1`` in every run (against the class image when unpaired, a
      number without meaning there). ``paired_sigma_px > 0`` compares both images blurred
      by a Gaussian of that many pixels: the pair then fixes the density and the coarse
      structure the MDCT resolves, not the exact place of each sub-resolution trabecula
      (whose pixel-wise L1 optimum is a blur). Tried for the bundled generator's thick
      trabeculae and not adopted: the excess comes from its output grid and from z (model card).
    * ``spectrum_w > 0``: ``spectrum_w *`` the L1 distance between the radial log power
      spectra of the translation and of its target micro-CT crop
      (:func:`~MicroCTLikeLib.models.losses.spectrum_loss`): the texture scale and
      sharpness (trabecular thickness, spacing), independent of where each trabecula lies.
      Logged as ``spectrum`` in every run.
    * ``context_slices = N > 0``: 2.5-D input. Batches' ``"mdct"`` are (B, 2N+1, H, W) slabs
      of the slices ``context_step_mm`` apart around the translated one (the sampler builds
      them, :class:`~MicroCTLikeLib.train.data.SliceSampler`); only the generator's content
      encoder sees the slab (:class:`FUNITGenerator`). The reconstruction target, the real
      MDCT of the discriminator, feature matching and the forward term use its centre
      slice. A 2-D generator cannot see ridges along z (horizontal plates); measured on the
      bundled one, its bone chords are 0.45 mm along z against 0.26 mm in-plane.
    * ``z_adv_w > 0`` (needs ``paired_w > 0``): a z-adversarial term. Slices generated one at
      a time follow the MDCT's 0.67 mm slice profile, so the bone they draw is elongated
      along z. A second discriminator (``z_discriminator``, the FUNIT discriminator with 3
      input channels and one output map) sees stacks of three slices ``z_adv_step_mm``
      apart: the registered micro-CT's (real) against the translations of the three MDCT
      slices with the same class code (fake); the generator gets ``z_adv_w *`` its hinge
      loss. Batches then carry ``"mdct_neighbours"`` and ``"microct_z"``
      (:class:`~MicroCTLikeLib.train.data.SliceSampler`, ``z_stack_step_mm``). Costs two
      more translations per sample and step; single process only (no DDP). Logged as
      ``z_adv`` / ``dz_loss`` when on.
    """

    name = "funit"

    def __init__(self, config: dict):
        super().__init__(config)
        c = self.config
        self.paired = c.get("paired_w", 0.0) > 0
        self.generator = make_generator(c)
        self.discriminator = init_weights(FUNITDiscriminator(
            in_ch=self.in_channels, nf=c["dis_nf"], n_down=c["dis_n_down"], max_nf=c["dis_max_nf"],
            n_classes=2, reference_inplace=c["dis_reference_inplace"]), "kaiming")
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.translator = FUNITTranslator(self.generator_ema, c["gen_latent_dim"])
        self.size_multiple = self.generator.size_multiple
        self.mdct_channels = self.generator.content_in_ch
        self.min_crop_px = max(self.discriminator.min_size, 2 ** c["gen_n_down_class"],
                               2 * self.generator.size_multiple)
        self._optimizers = {
            "generator": torch.optim.RMSprop(self.generator.parameters(), lr=c["lr_gen"],
                                             weight_decay=c["weight_decay"]),
            "discriminator": torch.optim.RMSprop(self.discriminator.parameters(), lr=c["lr_dis"],
                                                 weight_decay=c["weight_decay"]),
        }
        self.z_adversarial = c.get("z_adv_w", 0.0) > 0
        self.z_discriminator = None
        if self.z_adversarial:
            if not self.paired:
                raise InvalidParameterError("z_adv_w > 0 needs the paired term (paired_w > 0): its real stacks "
                                            "are the registered micro-CT of the translated slices")
            self.z_discriminator = init_weights(FUNITDiscriminator(
                in_ch=3 * self.in_channels, nf=c["dis_nf"], n_down=c["dis_n_down"], max_nf=c["dis_max_nf"],
                n_classes=1, reference_inplace=c["dis_reference_inplace"]), "kaiming")
            self._optimizers["z_discriminator"] = torch.optim.RMSprop(
                self.z_discriminator.parameters(), lr=c["lr_dis"], weight_decay=c["weight_decay"])

    def optimizers(self) -> dict:
        return dict(self._optimizers)

    def networks(self) -> dict:
        nets = {"generator": self.generator, "discriminator": self.discriminator,
                "generator_ema": self.generator_ema}
        if self.z_discriminator is not None:
            nets["z_discriminator"] = self.z_discriminator
        return nets

    def parameter_counts(self) -> dict:
        counts = {"generator": count_parameters(self.generator),
                  "discriminator": count_parameters(self.discriminator)}
        if self.z_discriminator is not None:
            counts["z_discriminator"] = count_parameters(self.z_discriminator)
        return counts

    def wrap_for_ddp(self, wrap_fn) -> None:
        if self.z_adversarial:
            raise InvalidParameterError("the z-adversarial term (z_adv_w > 0) trains in one process only; "
                                        "run without torchrun or set z_adv_w 0")
        super().wrap_for_ddp(wrap_fn)

    def inference_generator(self) -> nn.Module:
        return self.translator

    def update_class_code(self, microct_images: torch.Tensor) -> None:
        """Store the K-shot mean class code of these micro-CT slices (EMA generator)."""
        check_input(microct_images)
        check_image_size(microct_images.shape[-2:], 1, 2 ** self.config["gen_n_down_class"], "FUNIT class encoder")
        self.translator.set_class_code(microct_images)

    def extra_state(self) -> dict:
        state = super().extra_state()
        state["class_code"] = self.translator.class_code.detach().cpu().clone()
        state["n_class_images"] = int(self.translator.n_class_images)
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        if "class_code" in state:
            self.translator.class_code.copy_(state["class_code"])
            self.translator.n_class_images.fill_(int(state["n_class_images"]))

    def training_step(self, batch: dict, step: int) -> dict:
        c = self.config
        xs, xb = self._check_batch(batch)  # xs: content (MDCT, with context slices), xb: micro-CT
        xa = self.generator.centre(xs)  # the MDCT slice translated: xs itself without context
        n = xa.shape[0]
        # paired: each translation takes its class code from another sample's micro-CT
        xc = torch.roll(xb, 1, dims=0) if self.paired and n > 1 else xb
        la = torch.full((n,), MDCT_CLASS, dtype=torch.long, device=xa.device)
        lb = torch.full((n,), MICROCT_CLASS, dtype=torch.long, device=xa.device)

        z_stacks = self._z_batch(batch, xs) if self.z_adversarial else None

        # discriminator: hinge on real micro-CT and on translations, R1 on the reals
        self._optimizers["discriminator"].zero_grad(set_to_none=True)
        with torch.no_grad(), self._autocast():
            code = self.generator.encode_class(xc)
            xt = self.generator.translate(xs, code)
        real = xb.detach().requires_grad_(True)
        with self._autocast():
            logits, _ = self._net("discriminator")(torch.cat([real, xt.float()]), torch.cat([lb, lb]))
        d_real, d_fake = losses.hinge_d_loss(logits[:n], logits[n:])
        r1 = losses.r1_penalty(logits[:n], real, scaler=self._scaler("discriminator"))
        d_loss = c["gan_w"] * (d_real + d_fake) + c["r1_w"] * r1
        self._backward_step(d_loss, "discriminator")
        extra = {}
        if z_stacks is not None:
            extra["dz_loss"] = self._z_discriminator_step(z_stacks, code, xt)

        # generator: adversarial (translation + reconstruction), L1 G(x, x), feature matching
        self._optimizers["generator"].zero_grad(set_to_none=True)
        with self._autocast():
            xt, xr = self._net("generator")(xs, xc)
            with frozen(self.discriminator):
                logits, feats = self.discriminator(torch.cat([xt, xr]), torch.cat([lb, la]))
                with torch.no_grad():  # features of the real images are constants here
                    _, feats_real = self.discriminator(torch.cat([xb, xa]), torch.cat([lb, la]))
        adv_t = losses.hinge_g_loss(logits[:n])
        adv_r = losses.hinge_g_loss(logits[n:])
        f_t, f_r = feats.float().mean(dim=(2, 3)).split(n)
        f_b, f_a = feats_real.float().mean(dim=(2, 3)).split(n)
        fm_content = losses.l1(f_r, f_a)
        fm_class = losses.l1(f_t, f_b)
        rec = losses.l1(xr, xa)
        g_adv = 0.5 * (adv_t + adv_r)
        g_loss = c["gan_w"] * g_adv + c["rec_w"] * rec + c["fm_w"] * (fm_content + fm_class)
        # Our extension (forward_w > 0): the translation seen through the MDCT's blur must keep
        # the MDCT's structure. Logged in every run as a measure of how aligned translations are.
        forward = losses.forward_consistency_loss(xt, xa, sigma_px=c["forward_sigma_px"])
        if c["forward_w"] > 0:
            g_loss = g_loss + c["forward_w"] * forward
        if c["paired_sigma_px"] > 0:  # only the band the MDCT resolves; finer detail is the GAN's
            paired_l1 = losses.l1(losses.gaussian_blur(xt.float(), c["paired_sigma_px"]),
                                  losses.gaussian_blur(xb.float(), c["paired_sigma_px"]))
        else:
            paired_l1 = losses.l1(xt, xb)
        if self.paired:
            g_loss = g_loss + c["paired_w"] * paired_l1
        spectrum = losses.spectrum_loss(xt, xb)
        if c["spectrum_w"] > 0:
            g_loss = g_loss + c["spectrum_w"] * spectrum
        if z_stacks is not None:
            extra["z_adv"] = self._z_generator_loss(z_stacks, xc, xt)
            g_loss = g_loss + c["z_adv_w"] * extra["z_adv"]
        self._backward_step(g_loss, "generator")
        ema_update(self.generator_ema, self.generator, beta=c["ema_beta"])

        return as_floats(d_loss=d_loss, d_real=d_real, d_fake=d_fake, r1=r1, g_loss=g_loss, g_adv=g_adv,
                         rec_l1=rec, fm_content=fm_content, fm_class=fm_class, forward_ncc=forward,
                         paired_l1=paired_l1, spectrum=spectrum, **extra)

    # ------------------------------------------------------------------ z-adversarial term
    def _z_batch(self, batch: dict, xs: torch.Tensor):
        """(MDCT content below, above, real micro-CT stacks (B, 3, H, W)) of a batch, on the device."""
        for key, channels in (("mdct_neighbours", 2 * xs.shape[1]), ("microct_z", 3 * self.in_channels)):
            x = batch.get(key)
            if not torch.is_tensor(x) or x.shape != (xs.shape[0], channels) + tuple(xs.shape[2:]):
                raise InvalidParameterError(
                    f"z_adv_w > 0: batch[{key!r}] must be a tensor {(xs.shape[0], channels) + tuple(xs.shape[2:])} "
                    f"(SliceSampler with z_stack_step_mm); got {tuple(x.shape) if torch.is_tensor(x) else None}")
        neighbours = batch["mdct_neighbours"].to(self.device, dtype=torch.float32)
        below, above = neighbours.split(xs.shape[1], dim=1)
        return below, above, batch["microct_z"].to(self.device, dtype=torch.float32)

    def _translated_stack(self, z_stacks, code: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W): the translations of the slices below and above with ``code``, around ``xt``."""
        below, above, _ = z_stacks
        return torch.cat([self.generator.translate(below, code), xt, self.generator.translate(above, code)], dim=1)

    def _z_discriminator_step(self, z_stacks, code: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Hinge + R1 update of the z discriminator: registered micro-CT stacks against translated ones.

        ``code`` and ``xt`` are the discriminator step's class code and translation (no gradient).
        """
        c = self.config
        real = z_stacks[2]
        n = real.shape[0]
        self._optimizers["z_discriminator"].zero_grad(set_to_none=True)
        with torch.no_grad(), self._autocast():
            fake = self._translated_stack(z_stacks, code, xt)
        real = real.detach().requires_grad_(True)
        labels = torch.zeros(2 * n, dtype=torch.long, device=real.device)
        with self._autocast():
            logits, _ = self.z_discriminator(torch.cat([real, fake.float()]), labels)
        dz_real, dz_fake = losses.hinge_d_loss(logits[:n], logits[n:])
        r1 = losses.r1_penalty(logits[:n], real, scaler=self._scaler("z_discriminator"))
        loss = c["gan_w"] * (dz_real + dz_fake) + c["r1_w"] * r1
        self._backward_step(loss, "z_discriminator")
        return loss.detach()

    def _z_generator_loss(self, z_stacks, xc: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Generator hinge loss of its translated stacks (below, centre, above) on the z discriminator."""
        with self._autocast():
            fake = self._translated_stack(z_stacks, self.generator.encode_class(xc), xt)
            with frozen(self.z_discriminator):
                logits, _ = self.z_discriminator(fake, torch.zeros(fake.shape[0], dtype=torch.long, device=fake.device))
        return losses.hinge_g_loss(logits)
