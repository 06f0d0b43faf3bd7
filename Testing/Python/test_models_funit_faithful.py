"""Our FUNIT options for a generator that follows the patient: level-preserving
normalisation (gen_norm="none") and the paired L1 term (paired_w > 0).

The reference FUNIT is kept unchanged under the name ``funit`` with default options; these
tests show why the options exist (instance normalisation divides out a crop's density
level and contrast) and that each does what its name says.
"""

import pytest
import torch

from MicroCTLikeLib.errors import InvalidParameterError
from MicroCTLikeLib.models import build_model, model_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained_translator(**options):
    torch.manual_seed(0)
    model = build_model(model_config("funit", "tiny", **options))
    model.update_class_code(torch.rand(2, 1, 32, 32) * 2 - 1)
    return model, model.inference_generator().eval()


def test_reference_funit_output_ignores_the_inputs_density_level_and_contrast():
    """Why the option exists: with instance normalisation a crop's mean and contrast vanish.

    A denser or sparser crop inside cancellous bone differs from another mostly by level
    and contrast; the reference generator cannot tell them apart.
    """
    _, translator = _trained_translator()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        base, shifted = translator(x), translator(0.5 * x + 0.3)
    assert (base - shifted).abs().max() < 1e-3  # instance norm's eps only


def test_level_preserving_generator_responds_to_density_level():
    _, translator = _trained_translator(gen_norm="none")
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        base, shifted = translator(x), translator(0.5 * x + 0.3)
    assert (base - shifted).abs().mean() > 1e-2
    # and it has no instance normalisation anywhere in the generator
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in translator.modules())


def test_level_preserving_generator_has_the_reference_parameter_count():
    """The option changes normalisation only, never the weights' shapes (same checkpoint layout)."""
    with torch.device("meta"):
        ref = build_model(model_config("funit", "small")).parameter_counts()
        ours = build_model(model_config("funit", "small", gen_norm="none")).parameter_counts()
    assert ours == ref


def test_paired_option_makes_the_model_paired_and_pulls_the_translation_to_the_target():
    def final_paired_l1(paired_w):
        torch.manual_seed(1)
        model = build_model(model_config("funit", "tiny", gen_level_skip=True, paired_w=paired_w,
                                         lr_gen=2e-4, lr_dis=2e-4))
        generator = torch.Generator().manual_seed(3)
        mdct = torch.rand(4, 1, 32, 32, generator=generator) * 2 - 1
        microct = torch.tanh(3 * mdct)  # a fixed registered pair
        losses = [model.training_step({"mdct": mdct, "microct": microct}, step)["paired_l1"] for step in range(40)]
        return model, losses

    model, paired = final_paired_l1(10.0)
    assert model.paired is True
    assert build_model(model_config("funit", "tiny")).paired is False
    _, unpaired = final_paired_l1(0.0)
    assert paired[-1] < 0.92 * paired[0]
    assert paired[-1] < unpaired[-1]


def test_paired_class_code_comes_from_another_sample():
    """The class code of translation i is taken from micro-CT crop i-1 (never its own target)."""
    torch.manual_seed(2)
    model = build_model(model_config("funit", "tiny", paired_w=1.0))
    seen = []
    original = model.generator.encode_class

    def spy(images):
        seen.append(images.detach().clone())
        return original(images)

    model.generator.encode_class = spy
    mdct = torch.rand(3, 1, 32, 32) * 2 - 1
    microct = torch.rand(3, 1, 32, 32) * 2 - 1
    model.training_step({"mdct": mdct, "microct": microct}, 0)
    class_batches = [batch[:3] for batch in seen]
    assert all(torch.equal(batch, torch.roll(microct, 1, dims=0)) for batch in class_batches)


def test_unknown_normalisation_is_refused_with_the_choices():
    with pytest.raises(InvalidParameterError, match="gen_norm.*instance, none"):
        model_config("funit", "tiny", gen_norm="batch")


def test_level_skip_generator_responds_to_density_level_and_keeps_reference_layout_otherwise():
    _, translator = _trained_translator(gen_level_skip=True)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        base, shifted = translator(x), translator(0.5 * x + 0.3)
    assert (base - shifted).abs().mean() > 1e-2
    with torch.device("meta"):
        ref = build_model(model_config("funit", "tiny"))
        skip = build_model(model_config("funit", "tiny", gen_level_skip=True))
    # the reference keeps its state_dict layout (old checkpoints load); the skip adds in_ch x 7 x 7 weights
    assert "generator.upsampler.6.conv.weight" in ref.translator.state_dict()
    assert skip.parameter_counts()["generator"] == ref.parameter_counts()["generator"] + 49
