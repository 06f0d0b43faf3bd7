"""The interface every translation model implements, and the machinery they share.

Interface (the trainer in :mod:`MicroCTLikeLib.train` is written against exactly this)::

    MODEL_NAMES = ("funit", "cyclegan", "stargan", "pix2pixhd")        # models.registry
    PRESETS = ("tiny", "small", "default")
    model_config(name, preset="default", **overrides) -> dict           # JSON-serialisable
    build_model(config) -> TranslationModel                             # config includes "name"

    class TranslationModel(torch.nn.Module):
        name: str; config: dict; paired: bool      # True for pix2pixhd and for FUNIT with paired_w > 0
        autocast_dtype: None | torch.bfloat16 | torch.float16   # set by the caller; used
                                                   # only on CUDA (fp32 on CPU always)
        training_step(batch, step) -> dict[str, float]
        optimizers() -> dict[str, Optimizer]
        extra_state() -> dict;  load_extra_state(dict)
        networks() -> dict[str, nn.Module]
        parameter_counts() -> {"generator": int, "discriminator": int}
        inference_generator() -> nn.Module
        update_class_code(microct_images) -> None
        wrap_for_ddp(wrap_fn) -> None

Contract details
----------------
* ``batch`` is ``{"mdct": (B,1,H,W), "microct": (B,1,H,W)}``, float in [-1, 1], both of the
  same shape (unpaired models: independent slices; pix2pixhd: aligned pairs); FUNIT with
  ``context_slices = N`` takes ``"mdct"`` slabs (B,2N+1,H,W) (``model.mdct_channels``). Tensors on
  another device than the model are moved to it. H and W must be multiples of
  ``model.size_multiple`` and at least ``model.min_crop_px``.
* ``training_step(batch, step)`` performs the whole update of one iteration (discriminator
  and generator steps, their optimizers, EMA, R1 / gradient penalty, image pool) and returns
  Python floats for logging. ``step`` is the 0-based global iteration index; StarGAN uses it
  to update G every ``n_critic``-th step, so a resumed run must continue the numbering.
* Device: the caller moves the model (``model.to(device)``, optionally
  ``memory_format=torch.channels_last``). Optimizers are created in ``__init__``;
  ``Module.to`` keeps the Parameter objects, so they stay valid. Move the model *before*
  loading optimizer state (``load_state_dict`` casts state to the parameters' device).
* Mixed precision: with ``autocast_dtype`` set and the model on CUDA, forward passes run
  under ``torch.autocast``; float16 adds one GradScaler per optimizer (created lazily,
  their state is part of ``extra_state``). Losses and penalties are computed in float32.
* Determinism: weights are initialised from torch's global RNG, and the model draws its own
  random numbers (image pool, GP interpolation) from a private CPU ``torch.Generator``
  seeded from the global RNG at construction. Seed torch before ``build_model`` and the
  run is bit-reproducible on CPU; the generator's state is in ``extra_state``.
* ``networks()`` gives the modules whose ``state_dict`` the trainer saves ("generator",
  "discriminator", and "generator_ema" for FUNIT; CycleGAN's are modules holding both
  directions). ``extra_state()`` holds everything else needed to resume bit-identically
  (RNG state, scalers, image pools, the FUNIT class code); it contains only tensors,
  lists, dicts, ints, floats and bools, so ``torch.load(weights_only=True)`` reads it.
* ``inference_generator()`` returns a module with ``forward(mdct (B,1,H,W) in [-1,1]) ->
  (B,1,H,W) in [-1,1]``; any H, W (it pads internally to ``size_multiple``). For FUNIT it is
  the EMA generator plus a ``class_code`` buffer (in its ``state_dict``) set by
  ``update_class_code``; calling it before a class code was stored raises
  :class:`~MicroCTLikeLib.errors.MicroCTLikeError`.
* ``update_class_code(images)``: FUNIT stores the K-shot mean class code of the given
  micro-CT slices; the other models have no class code and ignore the call.
* Data parallel: ``wrap_for_ddp(wrap_fn)`` replaces the modules whose gradients are
  all-reduced ("generator" and "discriminator") by ``wrap_fn(module)`` for use inside
  ``training_step``; ``networks()`` keeps returning the unwrapped modules (state_dicts, EMA).
  Each wrapped module's ``forward`` is called exactly once per backward and uses all its
  parameters, so plain ``DistributedDataParallel(module)`` works
  (``find_unused_parameters=False``); a network used only as a fixed function in the other
  phase is called unwrapped with its gradients switched off.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Callable, Iterator, Optional

import torch
from torch import nn

from ..errors import InvalidParameterError


class TranslationModel(nn.Module):
    """Base class of the translation models; see the module docstring for the contract."""

    name: str = ""
    paired: bool = False
    #: names (keys of networks()) that wrap_for_ddp wraps
    ddp_network_names: tuple[str, ...] = ("generator", "discriminator")

    def __init__(self, config: dict):
        super().__init__()
        self.config = copy.deepcopy(dict(config))
        self.autocast_dtype: Optional[torch.dtype] = None
        self.size_multiple = 1
        self.min_crop_px = 1
        self.in_channels = int(self.config.get("in_channels", 1))
        #: channels of a batch's "mdct" (FUNIT with context slices: the slab of 2N+1 slices)
        self.mdct_channels = self.in_channels
        self._wrapped: dict[str, nn.Module] = {}
        self._scalers: dict = {}
        self._scaler_states: dict = {}
        seed = int(torch.randint(0, 2 ** 62, (1,), device="cpu").item())  # drawn from the caller-seeded global RNG
        self._rng = torch.Generator().manual_seed(seed)

    # ------------------------------------------------------------------ interface
    def training_step(self, batch: dict, step: int) -> dict[str, float]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def parameter_counts(self) -> dict[str, int]:
        raise NotImplementedError

    def inference_generator(self) -> nn.Module:
        raise NotImplementedError

    def update_class_code(self, microct_images: torch.Tensor) -> None:
        """Models without a class code ignore this (only FUNIT has one)."""

    def extra_state(self) -> dict:
        """RNG and GradScaler state; subclasses add theirs."""
        scalers = {k: s.state_dict() for k, s in self._scalers.items()}
        scalers.update({k: v for k, v in self._scaler_states.items() if k not in scalers})
        return {"rng_state": self._rng.get_state(), "grad_scalers": scalers}

    def load_extra_state(self, state: dict) -> None:
        if not isinstance(state, dict) or "rng_state" not in state:
            raise InvalidParameterError(
                f"extra state of model {self.name!r} lacks 'rng_state'; pass what extra_state() returned")
        self._rng.set_state(state["rng_state"].cpu())
        self._scaler_states = dict(state.get("grad_scalers", {}))
        for key, scaler in self._scalers.items():
            if key in self._scaler_states:
                scaler.load_state_dict(self._scaler_states.pop(key))

    def wrap_for_ddp(self, wrap_fn: Callable[[nn.Module], nn.Module]) -> None:
        """Use ``wrap_fn(module)`` (e.g. DistributedDataParallel) for the trained networks."""
        nets = self.networks()
        self._wrapped = {name: wrap_fn(nets[name]) for name in self.ddp_network_names}

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _net(self, name: str) -> nn.Module:
        """The module used for a training forward: the DDP wrapper if there is one."""
        if name in self._wrapped:
            return self._wrapped[name]
        return self.networks()[name]

    def _use_amp(self) -> bool:
        return self.autocast_dtype is not None and self.device.type == "cuda"

    def _autocast(self):
        if self._use_amp():
            return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _scaler(self, key: str):
        """The GradScaler of one optimizer when training in float16 on CUDA, else None."""
        if not (self._use_amp() and self.autocast_dtype == torch.float16 and self.device.type == "cuda"):
            return None
        if key not in self._scalers:
            scaler = torch.amp.GradScaler("cuda")
            if key in self._scaler_states:
                scaler.load_state_dict(self._scaler_states.pop(key))
            self._scalers[key] = scaler
        return self._scalers[key]

    def _backward_step(self, loss: torch.Tensor, key: str) -> None:
        """Backward of ``loss`` and a step of optimizer ``key`` (gradients zeroed before)."""
        optimizer = self.optimizers()[key]
        scaler = self._scaler(key)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    def _rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) numbers from the model's own generator, on the model's device."""
        return torch.rand(shape, generator=self._rng).to(self.device)

    def _check_batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate the training batch and move it to the model's device."""
        if not isinstance(batch, dict) or "mdct" not in batch or "microct" not in batch:
            raise InvalidParameterError("batch must be a dict with tensors 'mdct' and 'microct'")
        out = []
        for key, channels in (("mdct", self.mdct_channels), ("microct", self.in_channels)):
            x = batch[key]
            if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != channels:
                raise InvalidParameterError(
                    f"batch[{key!r}] must be a tensor (B, {channels}, H, W); got "
                    f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
            out.append(x.to(self.device, dtype=torch.float32, non_blocking=True))
        mdct, microct = out
        if (mdct.shape[0],) + mdct.shape[2:] != (microct.shape[0],) + microct.shape[2:]:
            raise InvalidParameterError(
                f"batch['mdct'] {tuple(mdct.shape)} and batch['microct'] {tuple(microct.shape)} "
                "must have the same shape apart from channels (same batch size and crop)")
        check_image_size(mdct.shape[-2:], self.size_multiple, self.min_crop_px, self.name)
        return mdct, microct


class GeneratorDiscriminatorModel(TranslationModel):
    """A model with one ``generator`` and one ``discriminator`` module, the optimizers in
    ``self._optimizers`` and its inference module in ``self._inference`` (CycleGAN, StarGAN,
    pix2pixHD); the interface accessors are the same for all of them."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return dict(self._optimizers)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def parameter_counts(self) -> dict[str, int]:
        from .layers import count_parameters

        return {"generator": count_parameters(self.generator), "discriminator": count_parameters(self.discriminator)}

    def inference_generator(self) -> nn.Module:
        return self._inference


def as_floats(**values: torch.Tensor) -> dict[str, float]:
    """Loss tensors -> Python floats for logging."""
    return {k: float(v.detach()) for k, v in values.items()}


def check_image_size(hw, multiple: int, minimum: int, what: str) -> None:
    """Raise a clear error when a training crop does not fit the network's down-sampling."""
    h, w = int(hw[0]), int(hw[1])
    if h % multiple or w % multiple or h < minimum or w < minimum:
        raise InvalidParameterError(
            f"{what}: crops of {h}x{w} px do not fit; use a size that is a multiple of {multiple} "
            f"and at least {minimum} px")


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Switch off ``requires_grad`` of a module's parameters for a block (restored after)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@torch.no_grad()
def ema_update(ema: nn.Module, source: nn.Module, *, beta: float) -> None:
    """``ema = beta * ema + (1 - beta) * source`` for parameters; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), source.parameters()):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), source.buffers()):
        b_ema.copy_(b)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (reflect, replicate if too small) at the bottom/right to a multiple; return the
    padded tensor and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


class PaddedGenerator(nn.Module):
    """Inference wrapper: pads the input to the generator's size multiple, crops the output.

    ``state_dict`` keys are the generator's under the prefix ``generator.``.
    """

    def __init__(self, generator: nn.Module, multiple: int):
        super().__init__()
        self.generator = generator
        self.size_multiple = int(multiple)

    def forward(self, mdct: torch.Tensor) -> torch.Tensor:
        check_input(mdct)
        x, (h, w) = pad_to_multiple(mdct, self.size_multiple)
        return self.generator(x)[..., :h, :w]


def check_input(x: torch.Tensor, *, channels: int = 1) -> None:
    """Raise InvalidParameterError unless ``x`` is a tensor (B, channels, H, W)."""
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != channels:
        raise InvalidParameterError(
            f"the generator takes a tensor (B, {channels}, H, W); got "
            f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
