"""FUNIT z-adversarial term: stacks of registered slices, off by default, trains and resumes exactly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from MicroCTLikeLib.errors import InvalidParameterError  # noqa: E402
from MicroCTLikeLib.models import registry  # noqa: E402
from MicroCTLikeLib.train import data as D  # noqa: E402

from test_models_funit_context import _code_data, _decode, recipe_against_bundled  # noqa: E402


@pytest.mark.parametrize("context", [0, 1])
def test_z_stacks_are_the_neighbours_of_the_drawn_slice(context):
    """Slice z of each case holds its code: the stacks are slices clip(z -+ m) at the same place and flips."""
    data = _code_data()
    data.mdct_slice_spacing_mm = [0.1, 0.05]
    steps = [2, 4]  # 0.2 mm in slices of 0.1 and 0.05 mm
    sampler = D.SliceSampler(data, batch_size=16, crop_px=16, seed=3, paired=True, context_slices=context,
                             context_step_mm=0.1, z_stack_step_mm=0.2)
    plain = D.SliceSampler(data, batch_size=16, crop_px=16, seed=3, paired=True, context_slices=context,
                           context_step_mm=0.1)
    channels = 2 * context + 1
    for _ in range(3):
        batch, reference = sampler.next_batch(), plain.next_batch()
        for key in ("mdct", "microct"):  # no extra random numbers: the same crops as without the option
            np.testing.assert_array_equal(batch[key], reference[key])
        assert batch["mdct_neighbours"].shape == (16, 2 * channels, 16, 16)
        assert batch["microct_z"].shape == (16, 3, 16, 16) and batch["microct_z"].dtype == np.float32
        case, z, y, x = _decode(batch["mdct"][:, context])
        n_slices = np.array([6, 9])[case[:, 0, 0]]
        m = np.array(steps)[case[:, 0, 0]]
        below_z, above_z = np.clip(z[:, 0, 0] - m, 0, n_slices - 1), np.clip(z[:, 0, 0] + m, 0, n_slices - 1)
        for offset, expected in ((0, below_z), (channels, above_z)):
            nc, nz, ny, nx = _decode(batch["mdct_neighbours"][:, offset + context])
            assert (nz == expected[:, None, None]).all() and (nc == case).all()
            np.testing.assert_array_equal(ny, y)
            np.testing.assert_array_equal(nx, x)
        micro = batch["microct_z"] - 0.25  # the paired micro-CT of _code_data is the code + 0.25
        for channel, expected in enumerate((below_z, z[:, 0, 0], above_z)):
            mc, mz, my, mx = _decode(micro[:, channel])
            assert (mz == expected[:, None, None]).all() and (mc == case).all()
            np.testing.assert_array_equal(my, y)
        np.testing.assert_array_equal(batch["microct_z"][:, 1:2], batch["microct"])


def test_z_stacks_need_pairs_and_spacing():
    data = _code_data()
    with pytest.raises(InvalidParameterError, match="need paired sampling"):
        D.SliceSampler(data, batch_size=2, crop_px=16, seed=0, z_stack_step_mm=0.2)
    with pytest.raises(InvalidParameterError, match="MDCT slice spacing"):
        D.SliceSampler(data, batch_size=2, crop_px=16, seed=0, paired=True, z_stack_step_mm=0.2)


def _z_batch(n=2, size=32, seed=0, channels=1):
    g = torch.Generator().manual_seed(seed)
    return {"mdct": torch.rand(n, channels, size, size, generator=g) * 2 - 1,
            "microct": torch.rand(n, 1, size, size, generator=g) * 2 - 1,
            "mdct_neighbours": torch.rand(n, 2 * channels, size, size, generator=g) * 2 - 1,
            "microct_z": torch.rand(n, 3, size, size, generator=g) * 2 - 1}


def test_z_adversarial_step_trains_its_discriminator_and_the_generator(one_torch_thread):
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny", paired_w=1.0, z_adv_w=0.5))
    assert "z_discriminator" in model.networks() and "z_discriminator" in model.optimizers()
    assert model.z_discriminator.features[0].conv.weight.shape[1] == 3
    before = {k: v.clone() for k, v in model.z_discriminator.state_dict().items()}
    generator_before = [p.clone() for p in model.generator.parameters()]
    losses = model.training_step(_z_batch(), 0)
    assert {"z_adv", "dz_loss"} <= set(losses) and all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(before[k], v) for k, v in model.z_discriminator.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, model.generator.parameters()))
    with pytest.raises(InvalidParameterError, match=r"batch\['mdct_neighbours'\]"):
        model.training_step({k: v for k, v in _z_batch().items() if k != "mdct_neighbours"}, 1)


def test_z_adversarial_generator_gradient_comes_from_the_z_discriminator(one_torch_thread):
    """With every other loss weight 0, only the z term moves the generator."""
    torch.manual_seed(0)
    zero = dict(gan_w=0.0, rec_w=0.0, fm_w=0.0, r1_w=0.0, forward_w=0.0)
    off = registry.build_model(registry.model_config("funit", "tiny", paired_w=1e-12, z_adv_w=1e-12, **zero))
    torch.manual_seed(0)
    on = registry.build_model(registry.model_config("funit", "tiny", paired_w=1e-12, z_adv_w=1.0, **zero))
    off.training_step(_z_batch(), 0)
    on.training_step(_z_batch(), 0)
    moved = max(float((a - b).detach().abs().max()) for a, b in zip(off.generator.parameters(), on.generator.parameters()))
    assert moved > 1e-6


def test_default_funit_has_no_z_discriminator():
    model = registry.build_model(registry.model_config("funit", "tiny"))
    assert model.z_discriminator is None and set(model.networks()) == {"generator", "discriminator", "generator_ema"}
    assert "z_adv" not in model.training_step({k: v for k, v in _z_batch().items() if k in ("mdct", "microct")}, 0)


@pytest.mark.parametrize("overrides, message", [
    ({"z_adv_w": 1.0}, "needs the paired term"),
    ({"z_adv_w": -1.0}, "z_adv_w"),
    ({"z_adv_w": 1.0, "paired_w": 1.0, "z_adv_step_mm": 0.0}, "z_adv_step_mm"),
])
def test_z_adversarial_options_are_validated(overrides, message):
    with pytest.raises(InvalidParameterError, match=message):
        registry.build_model(registry.model_config("funit", "tiny", **overrides))


def test_train_with_z_adversarial_term_and_resume(tiny_cohort, tmp_path, one_torch_thread):
    """`microctlike train` with the term: 2 steps + 1 resumed equal 3 at once, z discriminator included."""
    from MicroCTLikeLib import cli
    from MicroCTLikeLib.train.checkpoint import load_checkpoint

    common = ["train", "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort), "--seed", "1", "--quiet",
              "--set", "model_overrides.paired_w=1.0", "--set", "model_overrides.z_adv_w=0.5"]
    run, straight = tmp_path / "run", tmp_path / "straight"
    assert cli.main([*common, "--out", str(run), "--steps", "2"]) == 0
    assert "z_adv" in (run / "log.csv").read_text().splitlines()[0]
    assert cli.main([*common, "--out", str(run), "--steps", "3", "--resume"]) == 0
    assert cli.main([*common, "--out", str(straight), "--steps", "3"]) == 0
    resumed, once = load_checkpoint(run / "checkpoints" / "last.pt"), load_checkpoint(straight / "checkpoints" / "last.pt")
    assert resumed["sampler"] == once["sampler"]
    for key, value in once["networks"]["z_discriminator"].items():
        torch.testing.assert_close(resumed["networks"]["z_discriminator"][key], value, rtol=0, atol=0)
    for key, value in once["inference_generator"].items():
        torch.testing.assert_close(resumed["inference_generator"][key], value, rtol=0, atol=0)


def test_zadv_recipe_is_the_bundled_recipe_with_the_z_term():
    _, zadv, differ, others = recipe_against_bundled("bundled_funit_cpu_zadv.yaml")
    assert differ == {"z_adv_w"} and zadv["model_config"]["z_adv_step_mm"] == 0.2  # 0.2 mm is the default
    assert others == {"model_overrides"}
