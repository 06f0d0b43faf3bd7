"""All four translation models behind the common interface: configs, training, resume, DDP."""

import collections
import json
import math

import pytest
import torch

from MicroCTLikeLib.errors import CheckpointError, InvalidParameterError
from MicroCTLikeLib.models import MODEL_NAMES, PRESETS, build_inference_generator, build_model, model_config


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(seed: int, size: int = 32, n: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    mdct = torch.rand(n, 1, size, size, generator=g) * 2 - 1
    microct = torch.tanh(3 * torch.randn(n, 1, size, size, generator=g))
    return {"mdct": mdct, "microct": microct}


def _tiny(name: str, **overrides) -> dict:
    if name == "stargan":
        overrides.setdefault("n_critic", 2)  # so that a few steps include G updates
    return model_config(name, "tiny", **overrides)


def _snapshot(model) -> dict:
    return {k: [p.detach().clone() for p in net.parameters()] for k, net in model.networks().items()}


def _state(model) -> dict:
    return {"networks": {k: n.state_dict() for k, n in model.networks().items()},
            "optimizers": {k: o.state_dict() for k, o in model.optimizers().items()},
            "extra": model.extra_state()}


def _load(model, state) -> None:
    for k, n in model.networks().items():
        n.load_state_dict(state["networks"][k])
    for k, o in model.optimizers().items():
        o.load_state_dict(state["optimizers"][k])
    model.load_extra_state(state["extra"])


def test_configs_are_complete_json_and_validated():
    for name in MODEL_NAMES:
        for preset in PRESETS:
            cfg = model_config(name, preset)
            assert cfg["name"] == name and cfg["preset"] == preset
            assert json.loads(json.dumps(cfg)) == cfg
    assert model_config("funit", "tiny", lr_gen=3e-4)["lr_gen"] == 3e-4
    with pytest.raises(InvalidParameterError, match="unknown model"):
        model_config("unet")
    with pytest.raises(InvalidParameterError, match="unknown preset"):
        model_config("funit", "huge")
    with pytest.raises(InvalidParameterError, match="unknown hyper-parameter"):
        model_config("funit", "tiny", learning_rate=1.0)
    with pytest.raises(InvalidParameterError, match="'name'"):
        build_model({"preset": "tiny"})
    # a config that lacks a key (older checkpoint) is completed from its preset
    cfg = model_config("cyclegan", "tiny")
    del cfg["pool_size"]
    assert build_model(cfg).config["pool_size"] == model_config("cyclegan", "tiny")["pool_size"]


def test_reference_hyper_parameters():
    f = model_config("funit")
    assert (f["lr_gen"], f["lr_dis"], f["weight_decay"], f["r1_w"], f["rec_w"], f["fm_w"], f["ema_beta"]) == (
        1e-4, 1e-4, 1e-4, 10.0, 0.1, 1.0, 0.999)
    c = model_config("cyclegan")
    assert (c["lr"], c["betas"], c["cycle_w"], c["identity_w"], c["pool_size"], c["gen_n_res_blocks"]) == (
        2e-4, [0.5, 0.999], 10.0, 0.5, 50, 9)
    s = model_config("stargan")
    assert (s["cls_w"], s["rec_w"], s["gp_w"], s["n_critic"], s["gen_n_res_blocks"]) == (1.0, 10.0, 10.0, 5, 6)
    p = model_config("pix2pixhd")
    assert (p["fm_w"], p["vgg_weights_path"], 2 <= p["dis_n_scales"] <= 3) == (10.0, None, True)
    funit = build_model(model_config("funit", "tiny"))
    opt = funit.optimizers()["generator"]
    assert isinstance(opt, torch.optim.RMSprop) and opt.defaults["weight_decay"] == 1e-4


def test_cyclegan_default_sizes_match_published_counts():
    # the CycleGAN reference prints 11.378 M (ResNet-9 G) and 2.765 M (70x70 D) for RGB
    with torch.device("meta"):
        model = build_model(model_config("cyclegan", "default", in_channels=3))
    counts = model.parameter_counts()  # both directions summed
    assert round(counts["generator"] / 2 / 1e6, 3) == 11.378
    assert round(counts["discriminator"] / 2 / 1e6, 3) == 2.765


def test_tiny_presets_are_small():
    for name in MODEL_NAMES:
        counts = build_model(model_config(name, "tiny")).parameter_counts()
        assert 1_000 < counts["generator"] <= 100_000 and 1_000 < counts["discriminator"] <= 100_000, name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_updates_is_deterministic_and_resumes_exactly(name, tmp_path):
    cfg = _tiny(name)
    batches = [_batch(i) for i in range(4)]
    torch.manual_seed(7)
    a = build_model(cfg)
    assert a.paired == (name == "pix2pixhd")
    before = _snapshot(a)
    losses_a = [a.training_step(b, i) for i, b in enumerate(batches)]
    for losses in losses_a:
        assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())
    assert [set(x) for x in losses_a] == [set(losses_a[0])] * 4  # same keys every step (CSV log)
    after = _snapshot(a)
    for net, params in before.items():
        assert any(not torch.equal(p0, p1) for p0, p1 in zip(params, after[net])), f"{name}.{net} not updated"

    # same seed -> bit-identical losses; a resumed run continues the same trajectory
    torch.manual_seed(7)
    b = build_model(cfg)
    assert [b.training_step(batches[i], i) for i in range(2)] == losses_a[:2]
    path = tmp_path / "state.pt"
    torch.save(_state(b), path)
    torch.manual_seed(1234)  # different init, overwritten by the loaded state
    c = build_model(cfg)
    _load(c, torch.load(path, weights_only=True))
    assert [c.training_step(batches[i], i) for i in (2, 3)] == losses_a[2:]
    final = _snapshot(c)
    for net, params in after.items():
        assert all(torch.equal(p0, p1) for p0, p1 in zip(params, final[net])), f"{name}.{net} diverged"

    c.update_class_code(batches[0]["microct"])  # FUNIT needs it; the others ignore it
    gen = c.inference_generator()
    x = torch.rand(3, 1, 40, 44) * 2 - 1
    with torch.no_grad():
        out = gen(x)
    assert out.shape == (3, 1, 40, 44) and torch.isfinite(out).all() and out.abs().max() <= 1
    # the inference module alone (no discriminator) loads the saved inference state exactly
    alone = build_inference_generator(cfg)
    alone.load_state_dict(gen.state_dict())
    with torch.no_grad():
        assert torch.equal(alone(x), out)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_last_gives_the_same_step(name):
    cfg = _tiny(name)
    results = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(5)
        model = build_model(cfg).to(memory_format=memory_format)
        batch = {k: v.contiguous(memory_format=memory_format) for k, v in _batch(9).items()}
        results.append(model.training_step(batch, 0))
    assert results[1] == pytest.approx(results[0], rel=1e-4, abs=1e-5)


def test_stargan_updates_generator_every_n_critic_steps():
    torch.manual_seed(0)
    model = build_model(model_config("stargan", "tiny", n_critic=3))
    flags = []
    for step in range(6):
        g0 = [p.detach().clone() for p in model.generator.parameters()]
        flags.append(model.training_step(_batch(step), step)["g_updated"])
        changed = any(not torch.equal(p0, p) for p0, p in zip(g0, model.generator.parameters()))
        assert changed == bool(flags[-1])
    assert flags == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]


def test_ddp_wrapping_uses_each_wrapped_network_once_per_backward(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for name in MODEL_NAMES:
            cfg = _tiny(name, **({"n_critic": 1} if name == "stargan" else {}))
            torch.manual_seed(3)
            plain = build_model(cfg)
            expected = [plain.training_step(_batch(i), i) for i in range(3)]
            torch.manual_seed(3)
            model = build_model(cfg)
            calls = collections.Counter()

            def wrap(module, calls=calls):
                ddp = DistributedDataParallel(module)
                key = "generator" if module is model.networks()["generator"] else "discriminator"
                ddp.register_forward_pre_hook(lambda *_: calls.update([key]))
                return ddp

            model.wrap_for_ddp(wrap)
            got = [model.training_step(_batch(i), i) for i in range(3)]  # DDP would raise on unused params
            assert calls == {"generator": 3, "discriminator": 3}, name
            for g, e in zip(got, expected):
                assert g == pytest.approx(e, rel=1e-5, abs=1e-6), name
            assert isinstance(model.networks()["generator"], torch.nn.Module)
            assert not isinstance(model.networks()["generator"], DistributedDataParallel)
    finally:
        dist.destroy_process_group()


def test_pix2pixhd_vgg_loss_needs_and_uses_local_weights(tmp_path):
    from MicroCTLikeLib.models.vgg import VGG19Features

    with pytest.raises(CheckpointError, match="does not exist"):
        build_model(model_config("pix2pixhd", "tiny", vgg_weights_path=str(tmp_path / "missing.pth")))
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="VGG19"):
        build_model(model_config("pix2pixhd", "tiny", vgg_weights_path=str(bad)))

    torch.manual_seed(0)
    source = VGG19Features()
    state = {f"features.{k}": v for k, v in source.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # a full torchvision state dict has a classifier
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    torch.manual_seed(1)
    model = build_model(model_config("pix2pixhd", "tiny", vgg_weights_path=str(path)))
    assert torch.equal(model.vgg_loss.vgg.features[28].weight, source.features[28].weight)
    assert model.parameter_counts() == build_model(model_config("pix2pixhd", "tiny")).parameter_counts()
    x = _batch(0)["microct"]
    assert model.vgg_loss(x, x).item() == 0.0
    assert model.vgg_loss(x, -x).item() > 0.0
    losses = model.training_step(_batch(1), 0)
    assert losses["g_vgg"] > 0 and math.isfinite(losses["g_loss"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_autocast_code_path_runs(name, monkeypatch):
    """The mixed-precision branch (CUDA-only in use) exercised with CPU bfloat16 autocast."""
    torch.manual_seed(2)
    model = build_model(_tiny(name, **({"n_critic": 1} if name == "stargan" else {})))
    model.autocast_dtype = torch.bfloat16
    monkeypatch.setattr(model, "_use_amp", lambda: True)
    losses = [model.training_step(_batch(i), i) for i in range(2)]
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("overrides, match", [
    ({"gen_nf": 0}, "gen_nf=0: must be >= 1"),
    ({"gen_nf": 8.5}, "must be an integer"),
    ({"lr_gen": 0.0}, "learning rate"),
    ({"ema_beta": 1.0}, "must be < 1"),
    ({"r1_w": float("nan")}, "finite"),
    ({"dis_reference_inplace": 1}, "true or false"),
])
def test_bad_hyper_parameters_are_refused(overrides, match):
    with pytest.raises(InvalidParameterError, match=match):
        model_config("funit", "tiny", **overrides)
    with pytest.raises(InvalidParameterError, match="two numbers"):
        model_config("cyclegan", "tiny", betas=[0.5])
    assert model_config("cyclegan", "tiny", betas=(0.9, 0.99))["betas"] == [0.9, 0.99]


def test_registry_import_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from MicroCTLikeLib.models import model_config, MODEL_NAMES; "
            "model_config('funit'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True)
    assert out.stdout.strip() == "False"
