"""FUNIT context slices (2.5-D input): off by default, training and inference slabs agree.

The regression values below were computed with the code of main at e577081, before the
option existed: the default sampler and the bundled generator must give exactly them.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from MicroCTLikeLib.errors import InvalidParameterError  # noqa: E402
from MicroCTLikeLib.models import registry  # noqa: E402
from MicroCTLikeLib.train import data as D  # noqa: E402
from MicroCTLikeLib.volume import Volume  # noqa: E402


def _code_data():
    """Two cases whose pixel (z, y, x) of case c holds ((c*16 + z)*64 + y)*64 + x exactly."""
    images, masks = [], []
    for case, (n, h, w) in enumerate([(6, 40, 48), (9, 44, 40)]):
        z, y, x = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
        images.append((((case * 16 + z) * 64 + y) * 64 + x).astype(np.float32))
        masks.append(((z + y + x) % 3 == 0)[:, ::4, ::4].copy())
    stack = D.SliceStack.build(images, masks)
    micro = D.SliceStack.build([im + 0.5 for im in images], masks)
    return D.TrainingData(mdct=stack, microct=micro, paired_microct=[im + 0.25 for im in images], case_ids=["a", "b"],
                          cohort_dir="", mdct_window_hu=(-200.0, 1800.0), microct_window=(0.0, 1.0),
                          target_spacing_mm=0.104)


# corner pixels (mdct [0,0], mdct [-1,-1], micro-CT [0,0], micro-CT [-1,-1]) of two batches, main at e577081
_MAIN_UNPAIRED = [
    [[9156.0, 5648.0, 9736.0], [8211.0, 6623.0, 10711.0],
     [69660.5, 22040.5, 91347.5], [70605.5, 23015.5, 90372.5]],
    [[75032.0, 69903.0, 94755.0], [76007.0, 70848.0, 95700.0],
     [14575.5, 67535.5, 22739.5], [13600.5, 66560.5, 21764.5]]]
_MAIN_PAIRED = [
    [[9156.0, 69660.0, 5648.0], [8211.0, 70605.0, 6623.0],
     [9156.25, 69660.25, 5648.25], [8211.25, 70605.25, 6623.25]],
    [[22040.0, 9736.0, 91347.0], [23015.0, 10711.0, 90372.0],
     [22040.25, 9736.25, 91347.25], [23015.25, 10711.25, 90372.25]]]


@pytest.mark.parametrize("paired, expected", [(False, _MAIN_UNPAIRED), (True, _MAIN_PAIRED)])
def test_default_sampler_draws_as_before(paired, expected):
    """Without context the sampler draws the same random numbers and crops as before the option."""
    sampler = D.SliceSampler(_code_data(), batch_size=3, crop_px=16, seed=11, paired=paired)
    got = []
    for _ in range(2):
        batch = sampler.next_batch()
        assert batch["mdct"].shape == (3, 1, 16, 16) and batch["microct"].shape == (3, 1, 16, 16)
        got.append([batch["mdct"][:, 0, 0, 0].tolist(), batch["mdct"][:, 0, -1, -1].tolist(),
                    batch["microct"][:, 0, 0, 0].tolist(), batch["microct"][:, 0, -1, -1].tolist()])
    assert got == expected
    fixed = D.SliceSampler(_code_data(), batch_size=3, crop_px=16, seed=11).fixed_batch(3, seed=5)
    assert fixed["mdct"][:, 0, 0, 0].tolist() == [66319.0, 16399.0, 71887.0]
    assert fixed["mdct"][:, 0, -1, -1].tolist() == [67264.0, 17344.0, 70912.0]


def test_bundled_generator_generates_as_before(one_torch_thread):
    """The shipped checkpoint (no context option in its config) gives main's output."""
    from scipy import ndimage

    from MicroCTLikeLib.inference import bundled_model_path, generate_volume
    from MicroCTLikeLib.train.checkpoint import load_inference_model

    path = bundled_model_path()
    if not path.is_file():
        pytest.skip(f"no bundled generator at {path}")
    generator, metadata = load_inference_model(path)
    assert "context_slices" not in metadata["model"]["config"]
    rng = np.random.default_rng(3)
    hu = (ndimage.gaussian_filter(rng.standard_normal((4, 40, 40)), 1.5) * 3000 + 300).astype(np.int16)
    like, _ = generate_volume(Volume(hu, (0.2, 0.2, 0.1), (0.0, 0.0, 0.0)), generator, metadata, device="cpu", mode="whole")
    values = like.array.astype(np.float64)
    assert values.shape == (4, 77, 77)
    # main at e577081, CPU fp32, one thread
    assert values.mean() == pytest.approx(478.9385428866964, rel=1e-5)
    assert values.std() == pytest.approx(681.4321667825255, rel=1e-5)
    assert values[1, 10, 20] == pytest.approx(546.7001953125, abs=1e-2)
    assert values[3, 50, 60] == pytest.approx(45.003082275390625, abs=1e-2)


# ---------------------------------------------------------------------------- model
def _batch(channels, n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"mdct": torch.rand(n, channels, size, size, generator=g) * 2 - 1,
            "microct": torch.rand(n, 1, size, size, generator=g) * 2 - 1}


@pytest.mark.parametrize("context", [1, 2])
@pytest.mark.parametrize("level_skip", [False, True])
def test_context_training_step_and_inference_shapes(context, level_skip, one_torch_thread):
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny", context_slices=context, gen_level_skip=level_skip))
    assert model.mdct_channels == 2 * context + 1
    assert model.generator.content_encoder[0].conv.weight.shape[1] == 2 * context + 1
    assert model.generator.class_encoder[0].conv.weight.shape[1] == 1
    losses = model.training_step(_batch(2 * context + 1), 0)
    assert all(np.isfinite(v) for v in losses.values())
    batch = _batch(2 * context + 1)
    model.update_class_code(batch["microct"])
    out = model.inference_generator()(batch["mdct"][..., :30, :27])
    assert out.shape == (2, 1, 30, 27)
    with pytest.raises(InvalidParameterError, match=rf"\(B, {2 * context + 1}, H, W\)"):
        model.inference_generator()(batch["mdct"][:, :1])
    with pytest.raises(InvalidParameterError, match=rf"batch\['mdct'\] must be a tensor \(B, {2 * context + 1}, H, W\)"):
        model.training_step(_batch(1), 1)


def test_context_centre_is_what_the_mdct_image_losses_see(one_torch_thread):
    """Reconstruction, level skip and the class code of G(x, x) use the centre slice only."""
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny", context_slices=2, gen_level_skip=True))
    g = model.generator
    slab = _batch(5)["mdct"]
    np.testing.assert_array_equal(g.centre(slab).numpy(), slab[:, 2:3].numpy())
    with torch.no_grad():
        _, recon = g(slab, _batch(5)["microct"])
        code = g.encode_class(slab[:, 2:3])
        expected = g.decode(g.encode_content(slab), code, slab)
    torch.testing.assert_close(recon, expected)


def test_default_config_keeps_the_one_channel_generator():
    """Default: context 0, a 1-channel content encoder, the state_dict of before the option."""
    config = registry.model_config("funit", "tiny")
    assert config["context_slices"] == 0 and config["context_step_mm"] == 0.3
    torch.manual_seed(0)
    default = registry.build_model(config).inference_generator().state_dict()
    torch.manual_seed(0)
    widened = registry.build_model(registry.model_config("funit", "tiny", context_slices=1)).inference_generator().state_dict()
    assert list(default) == list(widened)
    differ = [k for k in default if default[k].shape != widened[k].shape]
    assert differ == ["generator.content_encoder.0.conv.weight"]
    assert default[differ[0]].shape[1] == 1 and widened[differ[0]].shape[1] == 3
    # a config written before the option existed (no keys) builds the same module
    old = {k: v for k, v in config.items() if not k.startswith("context_")}
    torch.manual_seed(0)
    rebuilt = registry.build_inference_generator(old).state_dict()
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in default.items()}


@pytest.mark.parametrize("overrides, message", [
    ({"context_slices": -1}, r"context_slices=-1: must be an integer in 0\.\.8"),
    ({"context_slices": 9}, r"context_slices=9: must be an integer in 0\.\.8"),
    ({"context_slices": 1.5}, r"context_slices=1\.5: must be an integer"),
    ({"context_step_mm": 0.0}, r"context_step_mm=0\.0: must be in \(0, 10\]"),
    ({"context_step_mm": 20.0}, r"context_step_mm=20\.0: must be in \(0, 10\]"),
    ({"context_step_mm": -0.1}, r"context_step_mm=-0\.1: must be in \(0, 10\] \(the distance between context slices in mm\)"),
    ({"context_step_mm": "0.3"}, r"context_step_mm='0\.3': must be in \(0, 10\]"),
])
def test_context_options_are_validated(overrides, message):
    with pytest.raises(InvalidParameterError, match=message):
        registry.model_config("funit", "tiny", **overrides)


# ---------------------------------------------------------------------------- training slabs
def _decode(code):
    """(case, z, y, x) of a pixel value of :func:`_code_data`."""
    code = np.asarray(code, dtype=np.int64)
    return code // (16 * 4096), code // 4096 % 16, code // 64 % 64, code % 64


@pytest.mark.parametrize("spacing_mm, step_mm, k", [((0.1, 0.1), 0.3, 3), ((0.2, 0.05), 0.3, None), ((0.6, 0.6), 0.3, 1)])
@pytest.mark.parametrize("context", [1, 2])
@pytest.mark.parametrize("paired", [False, True])
def test_sampler_slab_is_the_clamped_neighbourhood(spacing_mm, step_mm, k, context, paired):
    """Slice z of each case holds the code of z: channel j of a slab is slice clip(z + j*k)."""
    data = _code_data()
    data.mdct_slice_spacing_mm = list(spacing_mm)
    steps = [max(1, int(round(step_mm / s))) for s in spacing_mm]
    assert steps == [D.context_step_slices(step_mm, s) for s in spacing_mm]
    if k is not None:
        assert steps == [k, k]
    sampler = D.SliceSampler(data, batch_size=16, crop_px=16, seed=2, paired=paired,
                             context_slices=context, context_step_mm=step_mm)
    plain = D.SliceSampler(_code_data(), batch_size=16, crop_px=16, seed=2, paired=paired)
    for _ in range(3):
        batch, reference = sampler.next_batch(), plain.next_batch()
        assert batch["mdct"].shape == (16, 2 * context + 1, 16, 16) and batch["mdct"].dtype == np.float32
        assert batch["microct"].shape == (16, 1, 16, 16)
        # the centre is what the sampler without context draws; the micro-CT is unchanged
        np.testing.assert_array_equal(batch["mdct"][:, context:context + 1], reference["mdct"])
        np.testing.assert_array_equal(batch["microct"], reference["microct"])
        case, z, y, x = _decode(batch["mdct"])
        n_slices = np.array([6, 9])[case[:, context, 0, 0]]
        centre_z = z[:, context, 0, 0]
        for j in range(-context, context + 1):
            k_case = np.array(steps)[case[:, context, 0, 0]]
            expected = np.clip(centre_z + j * k_case, 0, n_slices - 1)
            assert (z[:, context + j] == expected[:, None, None]).all()
            # same case, same place, same flips in every channel
            np.testing.assert_array_equal(case[:, context + j], case[:, context])
            np.testing.assert_array_equal(y[:, context + j], y[:, context])
            np.testing.assert_array_equal(x[:, context + j], x[:, context])


def test_context_sampler_resumes_bit_identically():
    data = _code_data()
    data.mdct_slice_spacing_mm = [0.1, 0.1]
    make = lambda: D.SliceSampler(data, batch_size=3, crop_px=16, seed=4, context_slices=2)
    a = make()
    a.next_batch()
    state = a.state_dict()
    expected = a.next_batch()
    b = make()
    b.load_state_dict(state)
    got = b.next_batch()
    for key in ("mdct", "microct"):
        np.testing.assert_array_equal(got[key], expected[key])
    fixed = a.fixed_batch(4, seed=1)
    assert fixed["mdct"].shape == (4, 5, 16, 16) and fixed["microct"].shape == (4, 1, 16, 16)


def test_context_sampler_needs_slice_spacing():
    with pytest.raises(InvalidParameterError, match="slice spacing"):
        D.SliceSampler(_code_data(), batch_size=2, crop_px=16, seed=0, context_slices=1)
    with pytest.raises(InvalidParameterError, match="context_slices must be an integer >= 0"):
        D.SliceSampler(_code_data(), batch_size=2, crop_px=16, seed=0, context_slices=-1)
    with pytest.raises(InvalidParameterError, match="context_step_mm must be a finite number > 0"):
        D.context_step_slices(0.0, 0.1)
    with pytest.raises(InvalidParameterError, match="slice_spacing_mm must be a finite number > 0"):
        D.context_step_slices(0.3, float("nan"))


def test_context_indices_clamp_at_the_ends():
    np.testing.assert_array_equal(D.context_indices(0, 5, context_slices=2, step_slices=1), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(D.context_indices(4, 5, context_slices=1, step_slices=3), [1, 4, 4])
    np.testing.assert_array_equal(D.context_indices(np.array([0, 2]), 3, context_slices=0, step_slices=2), [[0], [2]])
    np.testing.assert_array_equal(D.context_indices(0, 1, context_slices=2, step_slices=2), [0, 0, 0, 0, 0])


# ---------------------------------------------------------------------------- inference slabs
class _Recorder(torch.nn.Module):
    """A stand-in generator: records each input batch, returns its centre slice."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return x[:, x.shape[1] // 2:x.shape[1] // 2 + 1]


def _context_metadata(context, step_mm=0.3):
    return {"normalisation": {"target_spacing_mm": 0.104, "mdct_window_hu": [-200.0, 1800.0],
                              "microct_window": [0.0, 1000.0]},
            "model": {"name": "funit", "config": {"context_slices": context, "context_step_mm": step_mm}}}


@pytest.mark.parametrize("context", [1, 2])
def test_inference_slab_equals_the_training_slab(tiny_cohort, context):
    """The key invariant: the slab the generator gets at inference is the one it trained on."""
    from MicroCTLikeLib.inference import SIZE_MULTIPLE, generate_volume
    from MicroCTLikeLib.train.config import DEFAULTS
    from MicroCTLikeLib.volume import read_volume

    case = [c for c in D.list_cohort(tiny_cohort) if c.case_id == "case000"]
    config = dict(DEFAULTS, crop_px=32, batch_size=4, cache_dtype="float32")
    data = D.load_training_data(case, config)
    sampler = D.SliceSampler(data, batch_size=8, crop_px=32, seed=3, flip=False, context_slices=context)
    batch = sampler.next_batch()["mdct"]

    recorder = _Recorder()
    mdct = read_volume(case[0].mdct_path)
    like, _ = generate_volume(mdct, recorder, _context_metadata(context), device="cpu", mode="whole", batch_size=2)
    stack = data.mdct.images[0]
    assert like.shape_zyx == stack.shape  # no training pad at this crop size
    slabs = torch.cat(recorder.inputs).numpy()[:, :, :stack.shape[1], :stack.shape[2]]
    assert slabs.shape == (stack.shape[0], 2 * context + 1) + stack.shape[1:]
    assert all(x.shape[-1] % SIZE_MULTIPLE == 0 for x in recorder.inputs)
    k = D.context_step_slices(0.3, 0.1)
    assert k == 3
    for z in range(stack.shape[0]):  # the whole inference slab against the training stack
        np.testing.assert_allclose(slabs[z], stack[D.context_indices(z, stack.shape[0], context_slices=context,
                                                                     step_slices=k)], atol=1e-5)
    for slab in batch:  # each training crop is a crop of the inference slab of its slice
        found = [(z, top, left) for z in range(stack.shape[0]) for top in range(stack.shape[1] - 31)
                 for left in range(stack.shape[2] - 31)
                 if np.allclose(slabs[z, context, top:top + 32, left:left + 32], slab[context], atol=1e-5)]
        assert found
        z, top, left = found[0]
        np.testing.assert_allclose(slabs[z, :, top:top + 32, left:left + 32], slab, atol=1e-5)
    np.testing.assert_allclose(like.array, D.denormalise(stack, [0.0, 1000.0]), atol=1e-3)


def test_region_takes_its_context_from_outside_itself():
    """A region's edge slices get the same slab as in a whole-volume pass."""
    from MicroCTLikeLib.inference import generate_volume

    rng = np.random.default_rng(0)
    mdct = Volume((rng.normal(300, 400, (12, 20, 24))).astype(np.int16), (0.195, 0.195, 0.1), (0.0, 0.0, 0.0))
    whole, region = _Recorder(), _Recorder()
    generate_volume(mdct, whole, _context_metadata(1), device="cpu", mode="whole")
    low, high = mdct.index_zyx_to_lps([4, 0, 0]), mdct.index_zyx_to_lps([7, 19, 23])
    out, report = generate_volume(mdct, region, _context_metadata(1), device="cpu", mode="whole", region=(low, high))
    assert out.shape_zyx[0] == 4 and report.n_slices == 4
    np.testing.assert_allclose(out.index_zyx_to_lps([0, 0, 0])[2], mdct.index_zyx_to_lps([4, 0, 0])[2])
    got = torch.cat(region.inputs).numpy()
    expected = torch.cat(whole.inputs).numpy()[4:8]
    assert got.shape[:2] == (4, 3)
    # channel 0 of the first region slice is slice 1 of the volume (4 - 3), not a clamped copy
    np.testing.assert_allclose(got[:, :, :out.shape_zyx[1], :out.shape_zyx[2]],
                               expected[:, :, :out.shape_zyx[1], :out.shape_zyx[2]], atol=1e-5)


@pytest.fixture(scope="module")
def context_generator():
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny", context_slices=2))
    model.update_class_code(torch.randn(2, 1, 64, 64))
    return model.inference_generator().eval()


def test_whole_and_tiled_generation_agree_with_context(context_generator, one_torch_thread):
    from MicroCTLikeLib.inference import translate_slices

    rng = np.random.default_rng(1)
    slices = (rng.standard_normal((5, 64, 80)) * 0.5).astype(np.float32)
    slices[:, :20] += 1.0  # non-stationary: per-tile statistics would differ
    whole, used = translate_slices(context_generator, slices, device=torch.device("cpu"), mode="whole",
                                   batch_size=2, context_slices=2, context_step_slices=2)
    assert used == "whole" and whole.shape == slices.shape
    tiled, used = translate_slices(context_generator, slices, device=torch.device("cpu"), mode="tiles",
                                   tile_core_px=32, tile_halo_px=64, context_slices=2, context_step_slices=2)
    assert used == "tiles"
    assert float(np.abs(tiled - whole).max()) < 1e-4
    # the context changes the translation: a generator fed clamped copies of one slice differs
    alone, _ = translate_slices(context_generator, slices[2:3], device=torch.device("cpu"), mode="whole",
                                context_slices=2, context_step_slices=2)
    assert float(np.abs(alone[0] - whole[2]).max()) > 1e-3
    part, _ = translate_slices(context_generator, slices, device=torch.device("cpu"), mode="whole",
                               context_slices=2, context_step_slices=2, z_range=(1, 3))
    np.testing.assert_allclose(part, whole[1:3], atol=1e-5)


def test_translate_slices_validates_context_arguments(context_generator):
    from MicroCTLikeLib.inference import translate_slices

    slices = np.zeros((3, 16, 16), np.float32)
    with pytest.raises(InvalidParameterError, match="context_step_slices must be an integer >= 1"):
        translate_slices(context_generator, slices, device=torch.device("cpu"), context_slices=2, context_step_slices=0)
    with pytest.raises(InvalidParameterError, match="z_range"):
        translate_slices(context_generator, slices, device=torch.device("cpu"), context_slices=2, z_range=(2, 5))
    with pytest.raises(InvalidParameterError, match=r"\(B, 5, H, W\)"):  # a context generator fed single slices
        translate_slices(context_generator, slices, device=torch.device("cpu"))


# ---------------------------------------------------------------------------- the CLI
def test_train_with_context_and_generate(tiny_cohort, tmp_path, one_torch_thread):
    """`microctlike train` with context options from a YAML config; its checkpoint generates and resumes."""
    from MicroCTLikeLib import cli
    from MicroCTLikeLib.inference import generate_volume
    from MicroCTLikeLib.train.checkpoint import load_checkpoint, load_inference_model
    from MicroCTLikeLib.volume import read_volume

    options = tmp_path / "context.yaml"
    options.write_text("model_overrides:\n  context_slices: 1\n  gen_level_skip: true\n")
    common = ["train", "--config", str(options), "--model", "funit", "--preset", "tiny", "--data", str(tiny_cohort),
              "--seed", "1", "--quiet", "--set", "model_overrides.context_step_mm=0.2", "--set", "sample_every=1"]
    run = tmp_path / "run"
    assert cli.main([*common, "--out", str(run), "--steps", "2"]) == 0
    assert (run / "samples" / "step_0000002.png").is_file()
    path = run / "checkpoints" / "last.pt"
    generator, metadata = load_inference_model(path)
    assert metadata["model"]["config"]["context_slices"] == 1
    assert metadata["model"]["config"]["context_step_mm"] == 0.2
    assert generator.generator.content_in_ch == 3
    mdct = read_volume(tiny_cohort / "case002" / "mdct.nrrd")
    like, report = generate_volume(mdct, generator, metadata, device="cpu", mode="whole")
    assert like.shape_zyx[0] == mdct.shape_zyx[0] and np.isfinite(like.array).all()
    tiled, _ = generate_volume(mdct, generator, metadata, device="cpu", mode="tiles", tile_core_px=16, tile_halo_px=32)
    window = metadata["normalisation"]["microct_window"]
    np.testing.assert_allclose(D.normalise(tiled.array, window), D.normalise(like.array, window), atol=1e-4)

    # resume: 2 steps + 1 more equals 3 steps at once (the sampler's state carries the slabs' draws)
    assert cli.main([*common, "--out", str(run), "--steps", "3", "--resume"]) == 0
    straight = tmp_path / "straight"
    assert cli.main([*common, "--out", str(straight), "--steps", "3"]) == 0
    resumed, once = load_checkpoint(path), load_checkpoint(straight / "checkpoints" / "last.pt")
    assert resumed["sampler"] == once["sampler"]
    for key, value in once["inference_generator"].items():
        torch.testing.assert_close(resumed["inference_generator"][key], value, rtol=0, atol=0)


def recipe_against_bundled(file_name):
    """A variant recipe of configs/ resolved beside the bundled one: (bundled, variant, model keys that
    differ, other keys that differ)."""
    from pathlib import Path

    from MicroCTLikeLib.train.config import resolve_config

    configs = Path(__file__).resolve().parents[2] / "configs"
    bundled = resolve_config(file=configs / "bundled_funit_cpu.yaml")
    variant = resolve_config(file=configs / file_name)
    model_keys = {k for k in variant["model_config"] if variant["model_config"][k] != bundled["model_config"][k]}
    other_keys = {k for k in variant if k != "model_config" and variant[k] != bundled[k]}
    return bundled, variant, model_keys, other_keys


def test_context_recipe_is_the_bundled_recipe_with_context():
    bundled, context, differ, others = recipe_against_bundled("bundled_funit_cpu_context.yaml")
    assert context["model_config"]["context_slices"] == 2 and context["model_config"]["context_step_mm"] == 0.3
    assert bundled["model_config"]["context_slices"] == 0
    assert differ == {"context_slices"}  # context_step_mm 0.3 is the default
    assert others == {"model_overrides"}


def test_generator_checks_its_content_channels():
    torch.manual_seed(0)
    model = registry.build_model(registry.model_config("funit", "tiny", context_slices=1))
    g = model.generator
    code = torch.zeros(1, g.class_encoder[-1].out_channels)
    with pytest.raises(InvalidParameterError, match=r"takes \(B, 3, H, W\): the MDCT slice and 1 context slice"):
        g.translate(torch.zeros(1, 1, 32, 32), code)
    with pytest.raises(InvalidParameterError, match=r"takes \(B, 3, H, W\)"):
        g(torch.zeros(1, 5, 32, 32), torch.zeros(1, 1, 32, 32))
    assert g.translate(torch.zeros(1, 3, 32, 32), code).shape == (1, 1, 32, 32)
