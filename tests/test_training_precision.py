"""bfloat16 training: the hardware check, the `auto` choice, and bf16 arithmetic within its precision."""

import json

import keras
import numpy as np
import pytest

from companion import cli
from companion.training import precision

pytestmark = pytest.mark.backend  # bfloat16's arithmetic and paths differ between the backends

# bfloat16 keeps 8 significant bits: rounding to nearest errs by at most u = 2^-8 of the value.
U_BF16 = 2.0**-8
U_F32 = 2.0**-24

INTEL = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
EPYC_ZEN3 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma avx512_vnni\n"


def test_the_cpus_bf16_units_are_read_from_its_flags():
    assert precision.cpu_bf16_units(INTEL) == ["avx512_bf16", "amx_bf16"]
    assert precision.cpu_bf16_units(EPYC_ZEN3) == [], "AVX512-VNNI multiplies integers, not bfloat16"
    assert precision.cpu_bf16_units("processor : 0\nFeatures : fp asimd bf16 i8mm\n") == ["bf16"]
    assert precision.cpu_bf16_units("") == []
    assert set(precision.cpu_bf16_units()) <= set(precision.BF16_CPU_FLAGS), "this machine's, read from /proc/cpuinfo"


def test_auto_measures_only_where_there_are_units_and_switches_only_when_it_pays():
    def never():
        raise AssertionError("no units: nothing to measure")

    plain = precision.choose("auto", probe=never, units=[])
    assert plain["policy"] == "float32" and "no bfloat16 units" in plain["reason"] and "measured_ratio" not in plain
    fast = precision.choose("auto", probe=lambda: 1.6, units=["AMX tiles in bfloat16"])
    assert fast["policy"] == "mixed_bfloat16" and fast["measured_ratio"] == 1.6 and "1.60x" in fast["reason"]
    slow = precision.choose("auto", probe=lambda: 1.05, units=["AVX512-BF16 dot products"])
    assert slow["policy"] == "float32" and "below the 1.1x" in slow["reason"]
    assert precision.choose("auto", probe=lambda: precision.MIN_RATIO, units=["x"])["policy"] == "mixed_bfloat16"


def test_an_explicit_choice_is_kept_and_warned_about_without_units():
    assert precision.choose("float32", probe=None, units=["x"]) == {"requested": "float32", "policy": "float32",
                                                                   "reason": "asked for float32"}
    emulated = precision.choose("bfloat16", units=[])
    assert emulated["policy"] == "mixed_bfloat16" and "emulated" in emulated["reason"]
    assert "emulated" not in precision.choose("bfloat16", units=["x"])["reason"]
    with pytest.raises(ValueError, match=r"precision: expected one of auto, float32, bfloat16, received 'fp16'"):
        precision.choose("fp16")
    with pytest.raises(ValueError, match=r"needs a `probe`"):
        precision.choose("auto", units=["x"])


def test_the_policy_scope_restores_the_previous_policy_even_on_error():
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with precision.policy_scope("mixed_bfloat16"):
            assert keras.layers.Dense(2).dtype_policy.name == "mixed_bfloat16"
            raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match=r"policy: expected one of \['float32', 'mixed_bfloat16'\], received 'float16'"):
        with precision.policy_scope("float16"):
            pass


@pytest.mark.parametrize("layer_kind", ["dense", "conv"])
def test_bf16_layers_agree_with_float32_within_bfloat16s_rounding(layer_kind):
    """Under mixed_bfloat16 a layer rounds its inputs and weights to bfloat16, multiplies, sums
    (in float32 on every backend here) and rounds the sum to bfloat16. Each product then errs by
    at most (2u + u^2)|x w| and the rounded sum by u |sum|, so with A = sum |x w| (the same
    layer applied to |x| and |w|):
        |y_bf16 - y_32| <= (2u + u^2)(1 + u) A + u |y_32| + 2 K u32 A,
    the last term covering the float32 sums of K terms. A sum taken in bfloat16 would exceed
    it; no error at all would mean no bfloat16 was used."""
    rng = np.random.default_rng(0)
    if layer_kind == "dense":
        x, terms = rng.standard_normal((64, 300)).astype("float32"), 300
        make = lambda: keras.layers.Dense(40, use_bias=False)
    else:
        x, terms = rng.standard_normal((8, 14, 14, 32)).astype("float32"), 3 * 3 * 32
        make = lambda: keras.layers.Conv2D(16, 3, padding="same", use_bias=False)
    full = make()
    y32 = keras.ops.convert_to_numpy(full(x))
    with precision.policy_scope("mixed_bfloat16"):
        half = make()
        half.build(x.shape)
    half.set_weights(full.get_weights())
    assert half.kernel.dtype == "float32", "the weights stay float32"
    y16 = half(x)
    assert keras.backend.standardize_dtype(y16.dtype) == "bfloat16"
    y16 = keras.ops.convert_to_numpy(keras.ops.cast(y16, "float32"))
    abs_layer = make()
    abs_layer.build(x.shape)
    abs_layer.set_weights([np.abs(w) for w in full.get_weights()])
    a = keras.ops.convert_to_numpy(abs_layer(np.abs(x)))
    u = U_BF16
    bound = (2 * u + u * u) * (1 + u) * a + u * np.abs(y32) + 2 * terms * U_F32 * a
    error = np.abs(y16 - y32)
    assert np.all(error <= bound), f"worst excess {np.max(error - bound)}"
    assert error.max() > 0, "bfloat16 changed nothing: the layer did not compute in bfloat16"
    assert np.median(error / bound) < 0.5, "rounding errors mostly cancel; their sum stays well inside the bound"


@pytest.mark.parametrize("name", ["conv_vae", "cluster_gan", "denoiser", "diffusion"])
def test_the_books_models_train_under_mixed_bfloat16(name, mnist_dir):
    """A few steps under the policy: float32 weights, finite float32 losses. On PyTorch the
    convolutional VAE's bf16 gradients used to stop with "slow_conv2d: grad_weight must be
    contiguous"; on TensorFlow the denoiser's loss mixed its bfloat16 logits with float32
    images (issue 20)."""
    from companion import data, recipes

    recipe = recipes.get(name)
    (x_train, y_train), _ = data.load_mnist(mnist_dir)
    model, batches = precision.trainee(recipe, data.scale(x_train[:128]), y_train[:128].astype("int32"), 32, "mixed_bfloat16")
    with precision.policy_scope("mixed_bfloat16"):
        history = model.fit(batches, epochs=1, verbose=0).history
    assert all(np.isfinite(values[-1]) for values in history.values()), history
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model._flatten_layers())


def test_train_records_the_policy_in_the_card_and_keeps_it_on_resume(tmp_path, mnist_dir, monkeypatch):
    from companion import weights

    common = ["train", "mlp_vae", "--train-images", "256", "--data-dir", str(mnist_dir), "--verbose", "0",
              "--out", str(tmp_path / "vae.keras"), "--checkpoint", str(tmp_path / "vae.ckpt.keras")]
    cli.run(common + ["--epochs", "1", "--precision", "bfloat16"])
    card = json.loads((tmp_path / "vae.json").read_text())
    assert card["precision"]["policy"] == "mixed_bfloat16" and card["precision"]["requested"] == "bfloat16"
    loaded = weights.load_file(tmp_path / "vae.keras")
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in loaded._flatten_layers())
    with pytest.raises(cli.UsageError, match=r"--precision: the checkpoint .* under the mixed_bfloat16 policy, received --precision float32"):
        cli.run(common + ["--epochs", "1", "--resume", "--precision", "float32"])
    cli.run(common + ["--epochs", "1", "--resume"])  # auto: the checkpoint's policy, nothing measured
    assert json.loads((tmp_path / "vae.json").read_text())["precision"] == {
        "requested": "auto", "policy": "mixed_bfloat16", "reason": "the resumed run's policy"}
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: [])
    monkeypatch.setattr(precision, "gpu_bf16", lambda: None)
    cli.run(common + ["--epochs", "1", "--restart"])
    assert json.loads((tmp_path / "vae.json").read_text())["precision"]["reason"] == "no bfloat16 units on this machine"


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch's own convolution paths")
def test_bf16_convolutions_train_on_pytorchs_slow_path_too(mnist_dir):
    """With oneDNN off, PyTorch runs 16-bit convolutions in its `slow_conv2d`, which stopped on
    Keras's channels-last kernels of one output channel ("grad_weight must be contiguous", the
    convolutional VAE's last layer); `policy_scope` installs
    the fix, and the gradients then equal oneDNN's within bfloat16's rounding: each path's
    kernel gradient sum x g (g = 2y) rounds x and g (u each), carries the forward pass's error
    in g (about 2u of the same scale, as in the layer test above) and rounds its result, so
    the two differ by at most 8u A + 2u |gradient|, A = sum |x| |g|."""
    import torch

    def gradients(onednn):
        with torch.backends.mkldnn.flags(enabled=onednn), precision.policy_scope("mixed_bfloat16"):
            layer = keras.layers.Conv2D(1, 3, padding="same")  # one output channel, as the VAEs' logits
            x = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((4, 14, 14, 16)).astype("float32"))
            layer.build(x.shape)
            layer.set_weights([w.astype("float32") for w in weights_])
            loss = keras.ops.sum(keras.ops.cast(layer(x), "float32") ** 2)
            loss.backward()
            return layer.kernel.value.grad.numpy(), keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(
                keras.ops.cast(layer(x), "float32"))

    rng = np.random.default_rng(1)
    weights_ = [rng.standard_normal((3, 3, 16, 1)) * 0.1, np.zeros(1)]
    (slow, _, _), (fast, x, y) = gradients(False), gradients(True)
    # A as a kernel gradient: of sum |g| conv(|x|, w) with respect to w (NCHW for torch)
    nchw = lambda a: torch.from_numpy(np.abs(a)).permute(0, 3, 1, 2).contiguous()
    a = torch.nn.grad.conv2d_weight(nchw(x), (1, 16, 3, 3), nchw(2 * y), padding=1).permute(2, 3, 1, 0).numpy()
    assert np.all(np.isfinite(slow))
    assert np.all(np.abs(slow - fast) <= 8 * U_BF16 * a + 2 * U_BF16 * np.abs(fast)), np.max(np.abs(slow - fast) / a)


def test_auto_trains_in_bfloat16_where_the_measurement_says_it_pays(tmp_path, mnist_dir, monkeypatch, capsys):
    measured = []
    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: ["amx_bf16"])
    monkeypatch.setattr(precision, "gpu_bf16", lambda: None)
    monkeypatch.setattr(precision, "probe_ratio", lambda recipe, x, y, batch_size, seed: measured.append(recipe.name) or 2.5)
    cli.run(["train", "mlp_vae", "--epochs", "1", "--train-images", "256", "--data-dir", str(mnist_dir), "--verbose", "0",
             "--out", str(tmp_path / "vae.keras"), "--checkpoint", str(tmp_path / "vae.ckpt.keras")])
    assert measured == ["mlp_vae"], "the model to be trained is the one measured"
    card = json.loads((tmp_path / "vae.json").read_text())["precision"]
    assert card["policy"] == "mixed_bfloat16" and card["measured_ratio"] == 2.5 and "AMX tiles in bfloat16" in card["reason"]
    assert "Precision: mixed_bfloat16 (AMX tiles in bfloat16; a bfloat16 step measured 2.50x" in capsys.readouterr().out


def test_tensorflow_trains_bfloat16_without_xla():
    """XLA on the CPU computes bfloat16 no faster than float32 (bench/bf16.py); TensorFlow's own
    kernels use the bfloat16 units. So the recipes that compile with XLA drop it under the policy."""
    from companion import recipes

    gan = recipes.get("cluster_gan")
    assert gan.compile_options("tensorflow") == {"jit_compile": True}
    with precision.policy_scope("mixed_bfloat16"):
        assert gan.compile_options("tensorflow") == {}
    assert gan.compile_options("torch") == {}


def test_a_trainee_is_compiled_as_the_command_line_compiles_it_unless_told_otherwise(mnist_dir):
    """bench/bf16.py times TensorFlow's float32 step with XLA (as trained) and without it."""
    from companion import data, recipes

    gan = recipes.get("cluster_gan")
    (x_train, y_train), _ = data.load_mnist(mnist_dir)
    x, y = data.scale(x_train[:64]), y_train[:64].astype("int32")
    as_trained, _ = precision.trainee(gan, x, y, 32)
    plain, _ = precision.trainee(gan, x, y, 32, jit_compile=False)
    bf16, _ = precision.trainee(gan, x, y, 32, "mixed_bfloat16")
    if keras.backend.backend() == "tensorflow":  # XLA in float32 (`Recipe.compile_options`), not under bfloat16
        assert as_trained.jit_compile is True and bf16.jit_compile is False
    assert plain.jit_compile is False
    assert {layer.dtype_policy.name for layer in bf16._flatten_layers()} >= {"mixed_bfloat16"}
    assert keras.config.dtype_policy().name == "float32", "the scope is left behind"
