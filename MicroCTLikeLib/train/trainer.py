"""The training loop: data -> model.training_step -> logs, samples, checkpoints.

:func:`train` runs one training job described by a resolved configuration
(:func:`~MicroCTLikeLib.train.config.resolve_config`).  The same function serves
``microctlike train``, ``python train.py`` and ``Slicer --no-main-window --python-script
train.py``; under ``torchrun`` each process runs it with its own rank.

Resuming is exact: a checkpoint holds the networks, optimizers, the model's extra state
(image pools, counters), the step, the torch / numpy / python generators and the data
sampler's generator, so on CPU a run killed after a checkpoint and resumed follows
bit-for-bit the trajectory of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np

from ..atomic import temp_prefix
from ..errors import CancelledError, CheckpointError, InvalidParameterError, MicroCTLikeError
from ..progress import raise_if_cancelled, report_progress
from . import distributed
from .checkpoint import checkpoint_metadata, load_checkpoint, load_state_dict_checked, save_checkpoint
from ..testing_hooks import pause_at
from .config import checkpoint_interval, write_config
from .data import SliceSampler, list_cohort, load_training_data, select_split
from .runlog import CsvLog, TensorBoard, write_sample_png

#: Options that may change when a run is resumed; everything else must match the checkpoint.
RESUME_MAY_CHANGE = ("steps", "device", "amp", "channels_last", "cpu_threads", "log_every", "sample_every", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints", "out", "data", "tensorboard")
SAMPLE_COUNT = 4  # rows in a sample PNG


@dataclasses.dataclass
class TrainResult:
    """What a finished (or already finished) run reports."""

    run_dir: Path
    step: int
    last_checkpoint: Optional[Path]
    last_losses: Dict[str, float]
    seconds: float


def _say_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_run_dir(run_dir: Path, *, resume: bool, force: bool, data=None) -> None:
    """Refuse to mix runs: a non-empty folder needs ``resume`` (or ``force``); never an input; writable."""
    from ..outputs import check_output_dir

    check_output_dir(run_dir, force=True, inputs=[data], option="--out")  # an input cohort, writability
    last = run_dir / "checkpoints" / "last.pt"
    occupied = run_dir.is_dir() and any(run_dir.iterdir())
    if resume:
        if not last.is_file():
            if occupied and is_run_folder(run_dir):
                raise InvalidParameterError(
                    f"{run_dir}: nothing to resume: the run stopped before its first checkpoint ({last} does not "
                    "exist); start it afresh with --force instead of --resume")
            if occupied:
                raise InvalidParameterError(
                    f"{run_dir}: nothing to resume: this folder holds other files, not a training run; start a new "
                    "run without --resume into an empty or new --out folder")
            raise InvalidParameterError(f"{run_dir}: nothing to resume: no run in this folder; start without --resume")
        return
    if occupied and not force:
        if last.is_file():
            raise InvalidParameterError(
                f"{run_dir}: holds a run with checkpoints; continue it with --resume, start afresh into it with "
                "--force, or choose another --out")
        if is_run_folder(run_dir):
            raise InvalidParameterError(
                f"{run_dir}: holds a run that stopped before its first checkpoint (nothing to resume); start afresh "
                "with --force, or choose another --out")
        raise InvalidParameterError(
            f"{run_dir}: is not a training run folder (it holds other files); choose an empty or new --out folder, "
            "or train into it with --force (its other files are kept)")


def is_run_folder(run_dir: Path) -> bool:
    """True when ``run_dir`` holds what a training run writes first (its config, its log or checkpoints)."""
    return any((run_dir / name).exists() for name in ("config.json", "log.csv", "checkpoints"))


def _autocast_dtype(amp: str, device):
    import torch

    if device.type != "cuda" or amp == "off":
        return None  # fp32 on CPU: bf16 autocast there is slow and changes numerics
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _rng_state(device) -> Dict[str, Any]:
    import torch

    np_state = np.random.get_state(legacy=False)
    np_state = {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}}
    state = {"torch": torch.get_rng_state(), "numpy": np_state, "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _to_device(batch: Mapping[str, np.ndarray], device, channels_last: bool):
    import torch

    out = {}
    for key, value in batch.items():
        tensor = torch.from_numpy(value).to(device, non_blocking=True)
        if channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        out[key] = tensor
    return out


def _generate(model, mdct, autocast_dtype):
    """Inference generator output without touching training state (eval mode, no grad)."""
    import torch

    generator = model.inference_generator()
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad(), torch.autocast(mdct.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            return generator(mdct).float()
    finally:
        generator.train(was_training)


def _centre_slice(mdct):
    """(B, 1, H, W) of an MDCT batch: the translated slice of a context slab (B, 2N+1, H, W)."""
    middle = mdct.shape[1] // 2
    return mdct[:, middle:middle + 1]


def _update_class_code(model, microct) -> None:
    import torch

    with torch.no_grad():
        model.update_class_code(microct)


def _resume_config(config: Dict[str, Any], saved: Mapping[str, Any], path) -> Dict[str, Any]:
    """The checkpoint's configuration with only the options a resume may change taken from ``config``."""
    if saved.get("model_config") != config.get("model_config") or saved.get("model") != config.get("model"):
        raise CheckpointError(
            f"{path}: the run was trained as {saved.get('model')!r} with other model settings than asked; "
            "resume with the run's own config (leave --model/--preset/--config out) or start a new run"
        )
    merged = dict(saved)
    for key in RESUME_MAY_CHANGE:
        if key in config:
            merged[key] = config[key]
    return merged


def train(
    config: Mapping[str, Any],
    *,
    resume: bool = False,
    force: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
    cancel=None,
    registry=None,
    say: Callable[[str], None] = _say_stderr,
) -> TrainResult:
    """Train a translation model as ``config`` says.

    Parameters
    ----------
    config : mapping
        Resolved configuration (:func:`~MicroCTLikeLib.train.config.resolve_config`);
        ``data`` (cohort folder) and ``out`` (run folder) are required.
    resume : bool
        Continue from ``out/checkpoints/last.pt`` (its configuration wins except for
        :data:`RESUME_MAY_CHANGE`).
    force : bool
        Train into a non-empty run folder without resuming.
    progress, cancel
        Progress callback ``(done, total, message)`` and cancel flag (rank 0 reports).
    registry : module, optional
        Model registry (``build_model``); default :mod:`MicroCTLikeLib.models.registry`.
    say : callable
        Where rank 0's messages go (default stderr).

    Returns
    -------
    TrainResult
    """
    if registry is None:
        from ..models import registry
    import torch

    config = dict(config)
    for key in ("data", "out"):
        if not config.get(key):
            raise InvalidParameterError(f"{key} is required (--{key})")
    info = distributed.dist_info_from_env()
    run_dir = Path(config["out"])
    check_run_dir(run_dir, resume=resume, force=force, data=config.get("data"))
    device = distributed.resolve_device(config["device"], info)
    distributed.init_process_group(info, device)  # also a rendezvous: every rank has checked run_dir
    main = info.is_main
    say = say if main else (lambda message: None)
    threads_before = torch.get_num_threads()
    if config.get("cpu_threads"):
        torch.set_num_threads(int(config["cpu_threads"]))
    try:
        payload = None
        if resume:
            last = run_dir / "checkpoints" / "last.pt"
            payload = load_checkpoint(last, expected_model=config["model"])
            config = _resume_config(config, payload["config"], last)
            say(f"resuming {run_dir} from step {payload['step']}")
        return _train(config, payload, info, device, run_dir, progress, cancel, registry, say)
    finally:
        torch.set_num_threads(threads_before)
        distributed.destroy_process_group(info)


def _train(config, payload, info, device, run_dir, progress, cancel, registry, say) -> TrainResult:
    import torch

    main = info.is_main
    started = time.perf_counter()
    seed = int(config["seed"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # model: the same seed on every rank gives the same initial weights
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    model = registry.build_model(dict(config["model_config"]))
    model.to(device)
    channels_last = bool(config["channels_last"]) and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    autocast_dtype = _autocast_dtype(config["amp"], device)
    model.autocast_dtype = autocast_dtype
    # data (the stored micro-CT window makes a resumed run see the same numbers)
    cases = select_split(
        list_cohort(config["data"]), config["split"], test_fraction=float(config["test_fraction"]), split_seed=int(config["split_seed"])
    )
    model_paired = bool(getattr(model, "paired", False))
    data = load_training_data(cases, config, cohort_dir=str(config["data"]), paired=model_paired, cancel=cancel)
    config["microct_window"] = [float(v) for v in data.microct_window]
    say(
        f"data: {len(cases)} specimens ({', '.join(data.case_ids)}), {len(data.mdct)} MDCT and "
        f"{len(data.microct)} micro-CT slices at {data.target_spacing_mm} mm; micro-CT window "
        f"{data.microct_window[0]:.4g}..{data.microct_window[1]:.4g}"
    )

    torch.manual_seed(seed + 1_000_003 * info.rank)  # per-rank stream for what the model draws while training
    sampler = SliceSampler(
        data,
        batch_size=int(config["batch_size"]),
        crop_px=int(config["crop_px"]),
        seed=seed,
        rank=info.rank,
        world_size=info.world_size,
        paired=model_paired,
        bone_crop_fraction=float(config["bone_crop_fraction"]),
        flip=bool(config["flip"]),
        # FUNIT's 2.5-D input: MDCT slabs of 2N+1 slices (other models have no such option)
        context_slices=int(model.config.get("context_slices", 0)),
        context_step_mm=float(model.config.get("context_step_mm", 0.3)),
        # FUNIT's z-adversarial term: stacks of registered slices z_adv_step_mm apart
        z_stack_step_mm=(float(model.config["z_adv_step_mm"]) if model.config.get("z_adv_w", 0.0) > 0 else None),
    )
    step = 0
    if payload is not None:
        step = _restore(model, sampler, payload, device, run_dir / "checkpoints" / "last.pt")
    if info.enabled:
        model.wrap_for_ddp(distributed.ddp_wrapper(device))

    counts = {key: int(value) for key, value in model.parameter_counts().items()}
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(config, run_dir / "config.json")
        say(
            f"model {config['model']} ({config['preset']}): generator {counts.get('generator', 0):,} / "
            f"discriminator {counts.get('discriminator', 0):,} parameters; device {device}"
            f"{', autocast ' + str(autocast_dtype).replace('torch.', '') if autocast_dtype else ', fp32'}"
            f"{', ' + str(info.world_size) + ' processes' if info.enabled else ''}"
        )
    log = CsvLog(run_dir / "log.csv", resume_step=step if payload is not None else None) if main else None
    board = TensorBoard(run_dir / "tensorboard", enabled=bool(config["tensorboard"]), say=say) if main else None
    fixed = _to_device(sampler.fixed_batch(max(SAMPLE_COUNT, int(config["class_code_shots"])), seed=seed), device, channels_last)

    def checkpoint(step_now: int) -> Path:
        _update_class_code(model, fixed["microct"][: int(config["class_code_shots"])])
        if not main:
            return run_dir / "checkpoints" / "last.pt"
        body = {
            "model": {"name": config["model"], "config": config["model_config"]},
            "parameters": counts,
            "normalisation": {
                "mdct_window_hu": list(data.mdct_window_hu),
                "microct_window": list(data.microct_window),
                "target_spacing_mm": data.target_spacing_mm,
            },
            "target_spacing_mm": data.target_spacing_mm,
            "training_data": data.summary(),
            "config": config,
            "step": step_now,
            "inference_generator": model.inference_generator().state_dict(),
            "networks": {name: net.state_dict() for name, net in model.networks().items()},
            "optimizers": {name: opt.state_dict() for name, opt in model.optimizers().items()},
            "extra_state": model.extra_state(),
            "rng": _rng_state(device),
            "sampler": sampler.state_dict(),
        }
        path = _save_step_and_last(body, run_dir / "checkpoints", step_now)
        prune_step_checkpoints(run_dir / "checkpoints", config.get("keep_checkpoints"))
        return path

    steps = int(config["steps"])
    every = checkpoint_interval(config)
    minutes = config.get("checkpoint_minutes")
    last_saved = time.monotonic()
    if main and config.get("checkpoint_every") is not None and int(config["checkpoint_every"]) > steps:
        say(f"checkpoint_every {config['checkpoint_every']} exceeds the run's {steps} steps: checkpointing every {every}")
    last_path = run_dir / "checkpoints" / "last.pt" if payload is not None else None
    losses: Dict[str, float] = {}
    step_started = time.perf_counter()
    start_step = step
    try:
        while step < steps:
            raise_if_cancelled(cancel, "training")
            batch = _to_device(sampler.next_batch(), device, channels_last)
            losses = {key: float(value) for key, value in model.training_step(batch, step).items()}
            step += 1
            bad = [key for key, value in losses.items() if not math.isfinite(value)]
            if bad:
                raise MicroCTLikeError(
                    f"training diverged at step {step}: loss {', '.join(bad)} is not finite; resume from the last "
                    "checkpoint with a lower learning rate (model_overrides) or --set amp=off"
                )
            if step % int(config["log_every"]) == 0 or step == steps or step == start_step + 1:
                logged = distributed.mean_across_ranks(losses, info, device)  # the mean over ranks
                if main:
                    log.append(step, time.perf_counter() - started, logged)
                    board.scalars(step, logged)
            if main:
                report_progress(progress, step, steps, " ".join(f"{k}={v:.3g}" for k, v in sorted(losses.items())[:4]))
            if step % int(config["sample_every"]) == 0:
                _update_class_code(model, fixed["microct"][: int(config["class_code_shots"])])
                if main:
                    translated = _generate(model, fixed["mdct"][:SAMPLE_COUNT], autocast_dtype)
                    write_sample_png(
                        run_dir / "samples" / f"step_{step:07d}.png",
                        _centre_slice(fixed["mdct"][:SAMPLE_COUNT]).float().cpu().numpy(),
                        translated.cpu().numpy(),
                        fixed["microct"][:SAMPLE_COUNT].float().cpu().numpy(),
                    )
            if step == start_step + 1:
                pause_at("train:step")
            due = step % every == 0 or step == steps
            if not due and minutes is not None:
                late = float(time.monotonic() - last_saved >= 60.0 * float(minutes))
                due = distributed.mean_across_ranks({"late": late}, info, device)["late"] > 0 if info.enabled else bool(late)
            if due:
                last_path = checkpoint(step)
                last_saved = time.monotonic()
                pause_at("train:checkpoint")
    except (CancelledError, KeyboardInterrupt):
        if step > start_step:  # keep the finished iterations: --resume continues from here
            last_path = checkpoint(step)
            say(f"stopped at step {step}; checkpoint {last_path}; continue with --resume")
        raise
    finally:
        if board is not None:
            board.close()
    distributed.barrier(info)
    seconds = time.perf_counter() - step_started
    if main and step > start_step:
        say(f"trained steps {start_step + 1}..{step} in {seconds:.1f} s ({seconds / (step - start_step):.3f} s/step); {last_path}")
    return TrainResult(run_dir=run_dir, step=step, last_checkpoint=last_path, last_losses=losses, seconds=seconds)


def _restore(model, sampler, payload, device, path) -> int:
    for name, net in model.networks().items():
        if name not in payload["networks"]:
            raise CheckpointError(f"{path}: no weights for network {name!r}; the checkpoint is of another architecture")
        load_state_dict_checked(net, payload["networks"][name], what=name, path=path)
    optimizers = model.optimizers()
    for name, optimizer in optimizers.items():
        if name not in payload["optimizers"]:
            raise CheckpointError(f"{path}: no state for optimizer {name!r}")
        try:
            optimizer.load_state_dict(payload["optimizers"][name])
        except (ValueError, KeyError, RuntimeError) as error:
            raise CheckpointError(f"{path}: optimizer {name!r} state does not fit ({error})") from None
    model.load_extra_state(payload["extra_state"])
    sampler.load_state_dict(payload["sampler"])
    _set_rng_state(payload["rng"], device)
    return int(payload["step"])


def _save_step_and_last(body: Mapping[str, Any], folder: Path, step: int) -> Path:
    """Write ``step_N.pt`` and make ``last.pt`` the same file (hard link, else a second write)."""
    step_path = save_checkpoint(body, folder / f"step_{step:07d}.pt")
    last = folder / "last.pt"
    tmp = folder / f"{temp_prefix('last.pt')}link"
    try:
        tmp.unlink(missing_ok=True)
        os.link(step_path, tmp)
        os.replace(tmp, last)
    except OSError:
        tmp.unlink(missing_ok=True)
        save_checkpoint(body, last)
    return last


def prune_step_checkpoints(folder: Path, keep: Optional[int]) -> None:
    """Delete all but the newest ``keep`` ``step_N.pt`` files (``last.pt`` is a separate link)."""
    if keep is None:
        return
    steps = sorted(Path(folder).glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for old in steps[: max(0, len(steps) - int(keep))]:
        old.unlink(missing_ok=True)


def describe_checkpoint(path) -> Dict[str, Any]:
    """Metadata of a checkpoint (no weights), for ``microctlike info``."""
    return checkpoint_metadata(load_checkpoint(path))
