"""FID: the Fréchet distance against closed-form Gaussians; the FID network's layer shapes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from MicroCTLikeLib.errors import InvalidParameterError  # noqa: E402
from MicroCTLikeLib.evaluate.fid import (  # noqa: E402
    FIDInception, frechet_distance, frechet_distance_features, image_features, load_fid_inception,
)


def test_frechet_distance_of_gaussians_in_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt s1 - sqrt s2)^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)
    # a common rotation changes nothing
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    rotated = frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    # one dimension: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_fid_of_feature_sets_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4000, 8))
    assert frechet_distance_features(a, a) == pytest.approx(0.0, abs=1e-8)
    values = [frechet_distance_features(a, a + shift) for shift in (0.5, 1.0, 2.0)]
    assert values == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)  # |shift|^2 over 8 dimensions
    b = rng.normal(size=(4000, 8)) * 2.0  # sampled: closed form 8 (2 - 1)^2 = 8
    assert frechet_distance_features(a, b) == pytest.approx(8.0, rel=0.1)
    assert np.isnan(frechet_distance_features(a[:1], b))


def test_fid_network_has_the_standard_layer_shapes():
    network = FIDInception()
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    # torchvision-named layers of the FID release (pt_inception-2015-12-05)
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Conv2d_4a_3x3.conv.weight"] == (192, 80, 3, 3)
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
    assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7a.branch3x3_2.conv.weight"] == (320, 192, 3, 3)
    assert shapes["Mixed_7c.branch3x3dbl_1.conv.weight"] == (448, 2048, 1, 1)
    assert shapes["Mixed_7c.branch_pool.bn.running_var"] == (192,)
    assert shapes["fc.weight"] == (1008, 2048)
    n_params = sum(p.numel() for p in network.parameters())
    # torchvision's Inception-v3 has 27,161,264 parameters: minus its auxiliary classifier (3,326,696)
    # and its 1000-class fc (2,049,000) leaves the 21,785,568 of the shared trunk; + the 1008-class fc
    assert n_params - network.fc.weight.numel() - network.fc.bias.numel() == 27_161_264 - 3_326_696 - 2_049_000
    assert n_params == 23_850_960


def test_fid_network_features_and_weight_loading(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    network = FIDInception().eval()
    images = [np.random.default_rng(i).integers(0, 255, (64, 80), dtype=np.uint8) for i in range(2)]
    features = image_features(network, images)
    assert features.shape == (2, 2048) and np.all(features >= 0)  # after ReLU and average pooling
    path = tmp_path / "fid.pth"
    torch.save(network.state_dict(), path)
    loaded = load_fid_inception(path)
    np.testing.assert_allclose(image_features(loaded, images), features, rtol=1e-5, atol=1e-6)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(InvalidParameterError, match="not the FID Inception"):
        load_fid_inception(tmp_path / "other.pth")
    with pytest.raises(InvalidParameterError, match="not found"):
        load_fid_inception(tmp_path / "missing.pth")


def test_fid_with_a_small_random_network_separates_shifted_images(one_torch_thread):
    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten())
    rng = np.random.default_rng(2)
    base = [np.clip(rng.normal(100, 30, (32, 32)), 0, 255).astype(np.uint8) for _ in range(60)]
    other = [np.clip(rng.normal(100, 30, (32, 32)), 0, 255).astype(np.uint8) for _ in range(60)]
    fa, fb = image_features(small, base), image_features(small, other)
    same_kind = frechet_distance_features(fa, fb)
    distances = [frechet_distance_features(fa, image_features(small, [np.clip(b.astype(int) + s, 0, 255).astype(np.uint8)
                                                                      for b in other])) for s in (20, 60)]
    assert same_kind < distances[0] < distances[1]
