"""FUNIT: parameter counts, class code, reconstruction path, in-place discriminator option."""

import pytest
import torch
import torch.nn.functional as F

from MicroCTLikeLib.errors import InvalidParameterError, MicroCTLikeError
from MicroCTLikeLib.models import build_model, model_config
from MicroCTLikeLib.models.funit import FUNITDiscriminator
from MicroCTLikeLib.models.layers import ActFirstResBlock, ConvBlock


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _funit_counts_by_hand(nf=64, latent=64, mlp=256, in_ch=1, n_classes=2):
    """Parameter counts from the architecture description alone (SCIENCE.md section 6)."""
    # content encoder: conv7 -> 3 x conv4/s2 doubling -> 2 res blocks (2 conv3 each)
    content = _conv(in_ch, nf, 7) + _conv(nf, 2 * nf, 4) + _conv(2 * nf, 4 * nf, 4) + _conv(4 * nf, 8 * nf, 4)
    content += 4 * _conv(8 * nf, 8 * nf, 3)
    # class encoder: conv7 -> 2 doubling + 2 constant conv4/s2 -> GAP -> 1x1 to latent
    cls = _conv(in_ch, nf, 7) + _conv(nf, 2 * nf, 4) + _conv(2 * nf, 4 * nf, 4) + 2 * _conv(4 * nf, 4 * nf, 4)
    cls += _conv(4 * nf, latent, 1)
    # MLP latent -> mlp -> mlp -> AdaIN params (mean + std for 4 AdaIN layers of 8 nf)
    adain = 2 * 4 * 8 * nf
    mlp_p = latent * mlp + mlp + mlp * mlp + mlp + mlp * adain + adain
    # decoder: 2 AdaIN res blocks, 3 x conv5 halving, conv7 to the image
    dec = 4 * _conv(8 * nf, 8 * nf, 3) + _conv(8 * nf, 4 * nf, 5) + _conv(4 * nf, 2 * nf, 5)
    dec += _conv(2 * nf, nf, 5) + _conv(nf, in_ch, 7)
    gen = content + cls + mlp_p + dec

    def afr(fin, fout):  # hidden = min(fin, fout); bias-free 1x1 learned shortcut
        h = min(fin, fout)
        return _conv(fin, h, 3) + _conv(h, fout, 3) + (fin * fout if fin != fout else 0)

    dis = _conv(in_ch, nf, 7)
    ch = nf
    for _ in range(4):
        out = min(2 * ch, 1024)
        dis += afr(ch, ch) + afr(ch, out)
        ch = out
    dis += afr(ch, ch) + afr(ch, min(2 * ch, 1024)) + _conv(1024, n_classes, 1)
    return gen, dis


def test_funit_default_parameter_counts_match_reference():
    with torch.device("meta"):
        model = build_model(model_config("funit", "default"))
    counts = model.parameter_counts()
    assert (counts["generator"], counts["discriminator"]) == _funit_counts_by_hand()
    # the published sizes, to the 4 significant digits given: 29.85 M and 54.13 M
    assert round(counts["generator"] / 1e6, 2) == 29.85
    assert round(counts["discriminator"] / 1e6, 2) == 54.13
    assert counts == {"generator": 29_847_617, "discriminator": 54_126_402}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    model = build_model(model_config("funit", "tiny"))
    g = torch.Generator().manual_seed(2)
    batch = {"mdct": torch.rand(2, 1, 32, 32, generator=g) * 2 - 1,
             "microct": torch.rand(2, 1, 32, 32, generator=g) * 2 - 1}
    return model, batch


def test_reconstruction_path_is_g_of_x_x(tiny):
    model, batch = tiny
    gen = model.generator
    xa, xb = batch["mdct"], batch["microct"]
    with torch.no_grad():
        xt, xr = gen(xa, xb)
        manual_r = gen.decode(gen.encode_content(xa), gen.encode_class(xa))
        manual_t = gen.decode(gen.encode_content(xa), gen.encode_class(xb))
        same_t, same_r = gen(xa, xa)
    assert torch.allclose(xr, manual_r, atol=1e-5) and torch.allclose(xt, manual_t, atol=1e-5)
    assert torch.allclose(same_t, same_r, atol=1e-5)  # G(x, x) both ways is the same image
    assert not torch.allclose(xt, xr)  # the class image changes the output
    expected_rec = (xr - xa).abs().mean().item()
    # the D step does not touch G, so the logged reconstruction loss is L1(G(x, x), x) before the update
    losses = model.training_step(batch, 0)
    assert losses["rec_l1"] == pytest.approx(expected_rec, rel=1e-5)


def test_class_code_is_k_shot_mean_stored_and_used(tiny):
    model, batch = tiny
    translator = model.inference_generator()
    x = batch["mdct"]
    fresh = build_model(model_config("funit", "tiny"))
    with pytest.raises(MicroCTLikeError, match="update_class_code"):
        fresh.inference_generator()(x)
    g = torch.Generator().manual_seed(5)
    shots_a = torch.rand(3, 1, 32, 32, generator=g) * 2 - 1
    shots_b = -shots_a.flip(-1)
    model.update_class_code(shots_a)
    with torch.no_grad():
        expected = model.generator_ema.encode_class(shots_a).mean(0, keepdim=True)
        out_a = translator(x)
    assert torch.allclose(translator.class_code, expected, atol=1e-6)
    assert int(translator.n_class_images) == 3
    assert out_a.shape == x.shape and out_a.abs().max() <= 1
    model.update_class_code(shots_b)
    with torch.no_grad():
        out_b = translator(x)
    assert not torch.allclose(out_a, out_b)
    # the code lives in the inference generator's state_dict: a fresh one reproduces the output
    state = translator.state_dict()
    assert "class_code" in state and "n_class_images" in state
    fresh.inference_generator().load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(fresh.inference_generator()(x), out_b)
    # any image size: padded to the size multiple internally, cropped back
    with torch.no_grad():
        odd = translator(torch.zeros(1, 1, 37, 45))
    assert odd.shape == (1, 1, 37, 45)


def _reference_inplace_forward(d: FUNITDiscriminator, x: torch.Tensor, labels: torch.Tensor):
    """The reference semantics written literally: LeakyReLU(inplace=True) before each conv."""
    x = x.clone()
    for layer in d.features:
        if isinstance(layer, ActFirstResBlock):
            x_s = layer.shortcut(x) if layer.shortcut is not None else x
            dx = layer.conv_0.conv(layer.conv_0.pad(F.leaky_relu(x, 0.2, inplace=True)))
            dx = layer.conv_1.conv(layer.conv_1.pad(F.leaky_relu(dx, 0.2, inplace=True)))
            x = x_s + dx
        elif isinstance(layer, ConvBlock):
            x = layer(x)
        else:
            x = layer(x)
    feat = x
    maps = d.classifier(F.leaky_relu(feat, 0.2, inplace=True))  # also overwrites feat
    return maps[torch.arange(x.shape[0]), labels][:, None], feat


def test_inplace_option_reproduces_reference_and_changes_output():
    torch.manual_seed(3)
    ref = FUNITDiscriminator(nf=4, n_down=2, max_nf=16, reference_inplace=True)
    plain = FUNITDiscriminator(nf=4, n_down=2, max_nf=16, reference_inplace=False)
    plain.load_state_dict(ref.state_dict())
    x = torch.randn(2, 1, 32, 32)
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        lit_logits, lit_feat = _reference_inplace_forward(ref, x, labels)
        ref_logits, ref_feat = ref(x, labels)
        plain_logits, plain_feat = plain(x, labels)
    assert torch.allclose(ref_logits, lit_logits, atol=1e-6)
    assert torch.allclose(ref_feat, lit_feat, atol=1e-6)
    assert (ref_logits - plain_logits).abs().max() > 1e-3  # documented difference, same weights
    assert not torch.allclose(ref_feat, plain_feat)


def test_funit_rejects_bad_batches(tiny):
    model, batch = tiny
    with pytest.raises(InvalidParameterError, match="same shape"):
        model.training_step({"mdct": batch["mdct"], "microct": batch["microct"][:1]}, 0)
    with pytest.raises(InvalidParameterError, match="multiple of 8"):
        model.training_step({"mdct": torch.zeros(2, 1, 36, 36), "microct": torch.zeros(2, 1, 36, 36)}, 0)
    with pytest.raises(InvalidParameterError, match="at least 32"):
        model.training_step({"mdct": torch.zeros(2, 1, 16, 16), "microct": torch.zeros(2, 1, 16, 16)}, 0)
    with pytest.raises(InvalidParameterError, match=r"\(B, 1, H, W\)"):
        model.training_step({"mdct": torch.zeros(2, 32, 32), "microct": torch.zeros(2, 32, 32)}, 0)


def test_forward_consistency_loss_rewards_structure_not_intensity_scale():
    from MicroCTLikeLib.models import losses

    torch.manual_seed(0)
    sharp = (torch.rand(2, 1, 48, 48) > 0.8).float() * 2 - 1  # a fine binary structure
    mdct_like = losses.gaussian_blur(sharp, 2.5) * 0.3 + 0.1  # the same structure, blurred, other scale
    assert float(losses.forward_consistency_loss(sharp, mdct_like, sigma_px=2.5)) < 1e-4
    unrelated = (torch.rand(2, 1, 48, 48) > 0.8).float() * 2 - 1
    assert float(losses.forward_consistency_loss(unrelated, mdct_like, sigma_px=2.5)) > 0.5
    # a Gaussian blur keeps the mean and the shape
    flat = torch.full((1, 1, 20, 20), 0.25)
    assert torch.allclose(losses.gaussian_blur(flat, 1.5), flat, atol=1e-6)


def test_forward_weight_enters_the_generator_loss_only_when_set():
    torch.manual_seed(0)
    batch = {"mdct": torch.rand(2, 1, 32, 32) * 2 - 1, "microct": torch.rand(2, 1, 32, 32) * 2 - 1}
    results = {}
    for weight in (0.0, 5.0):
        torch.manual_seed(1)
        model = build_model(model_config("funit", "tiny", forward_w=weight))
        results[weight] = model.training_step(batch, 0)
    assert results[0.0]["forward_ncc"] == pytest.approx(results[5.0]["forward_ncc"], rel=1e-6)
    assert results[5.0]["g_loss"] == pytest.approx(results[0.0]["g_loss"] + 5.0 * results[0.0]["forward_ncc"], rel=1e-5)
    with pytest.raises(InvalidParameterError, match="forward_sigma_px"):
        model_config("funit", "tiny", forward_sigma_px=0.0)
