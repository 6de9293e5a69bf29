"""The recipes: each shipped model's kind decides, in one place, its batches, its compile
options and what `evaluate` needs."""

import dataclasses

import keras
import numpy as np
import pytest

from companion import recipes

X = np.linspace(0, 1, 10 * 28 * 28, dtype=np.float32).reshape(10, 28, 28)
Y = np.arange(10) % 10


def first_batch(name, batch_size=4):
    batches = recipes.get(name).batches(X, Y, batch_size=batch_size, seed=0)
    return batches, batches[0]


def test_every_recipe_has_one_of_the_five_kinds():
    kinds = {name: recipe.kind for name, recipe in recipes.RECIPES.items()}
    assert set(kinds.values()) == {recipes.CLASSIFIER, recipes.VAE, recipes.GAN, recipes.DENOISER, recipes.DIFFUSION}
    assert all(isinstance(kind, recipes.Kind) for kind in kinds.values())


@pytest.mark.parametrize("name", ["mlp_vae", "conv_vae", "ar_vae"])
def test_a_vae_trains_on_binary_images_without_labels(name):
    batches, batch = first_batch(name)
    assert isinstance(batch, np.ndarray) and set(np.unique(batch)) <= {0.0, 1.0}
    assert len(batches) == 3  # 10 images in batches of 4: the last, smaller batch is kept


def test_a_conditional_vae_reads_its_labels_as_input():
    _, batch = first_batch("conditional_vae")
    (x, y), = batch
    assert x.shape[0] == len(y) == 4 and set(y) <= set(range(10))
    assert set(np.unique(x)) <= {0.0, 1.0}


@pytest.mark.parametrize("name, conditional", [("mlp_gan", False), ("cluster_gan", False), ("acgan", True)])
def test_a_gan_drops_the_last_smaller_batch_and_reads_labels_only_if_conditional(name, conditional):
    batches, batch = first_batch(name)
    assert len(batches) == 2
    assert isinstance(batch, tuple) == conditional
    x = batch[0] if conditional else batch
    assert not set(np.unique(x)) <= {0.0, 1.0}, "GANs see grey levels, not binary draws"


def test_the_classifier_reads_images_and_labels_and_the_denoiser_images_alone():
    _, (x, y) = first_batch("classifier")
    assert x.shape[0] == len(y) == 4
    _, x = first_batch("denoiser")
    assert isinstance(x, np.ndarray) and x.shape[0] == 4


def test_the_diffusion_model_reads_grey_images_alone():
    batches, x = first_batch("diffusion")
    assert isinstance(x, np.ndarray) and x.shape[0] == 4 and len(batches) == 3
    assert not set(np.unique(x)) <= {0.0, 1.0}, "grey levels, not binary draws"


def test_the_diffusion_recipe_predicts_v_from_the_last_steps_weights():
    recipe = recipes.get("diffusion")
    model = recipe.compile(recipe.build(0), steps_per_epoch=10, epochs=2)
    assert model.prediction == "v" and not model.optimizer.use_ema
    assert model.eta == 1.0, "the model samples by default as its card was measured"


def test_a_recipes_adam_arguments_reach_the_optimizer():
    """`adam` holds further Adam arguments, e.g. a moving average of the weights."""
    recipe = dataclasses.replace(recipes.get("diffusion"), adam={"use_ema": True, "ema_momentum": 0.9})
    model = recipe.compile(recipe.build(0), steps_per_epoch=10, epochs=2)
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9


@pytest.mark.parametrize("name, needs", [("mlp_vae", False), ("conditional_vae", True), ("mlp_gan", True), ("classifier", False),
                                         ("denoiser", False), ("diffusion", True)])
def test_evaluate_asks_for_the_classifier_where_it_measures_samples_by_it(name, needs):
    recipe = recipes.get(name)
    assert recipe.kind.needs_classifier(recipe) is needs


def test_xla_is_asked_for_on_tensorflow_for_the_vaes_and_gans_only():
    for name, recipe in recipes.RECIPES.items():
        on_tf = recipe.compile_options("tensorflow") if keras.backend.backend() == "tensorflow" else None
        if on_tf is not None:
            assert on_tf == ({"jit_compile": True} if recipe.kind in (recipes.VAE, recipes.GAN) else {}), name
        assert recipe.compile_options("jax") == recipe.compile_options("torch") == {}, name


@pytest.mark.parametrize("name", ["classifier", "mlp_vae"])
def test_compile_puts_the_cosine_schedule_over_the_whole_run(name):
    recipe = recipes.get(name)
    model = recipe.compile(recipe.build(0), steps_per_epoch=10, epochs=3)
    schedule = model.optimizer._learning_rate  # the schedule object (`learning_rate` reads its current value)
    assert schedule.decay_steps == 30 and schedule.initial_learning_rate == recipe.learning_rate


def test_a_gan_compiles_without_a_step_count():
    """Chapter 6 compiles a GAN by its recipe with steps_per_epoch=None: GANs make their own optimizers."""
    recipe = recipes.get("mlp_gan")
    model = recipe.compile(recipe.build(0), steps_per_epoch=None, epochs=2)
    assert model.compiled


@pytest.mark.backend
def test_compile_options_turn_on_xla_on_tensorflow_for_the_generative_models():
    assert recipes.get("cluster_gan").compile_options("tensorflow") == {"jit_compile": True}
    assert recipes.get("mlp_vae").compile_options("tensorflow") == {"jit_compile": True}
    assert recipes.get("classifier").compile_options("tensorflow") == {}  # measured: no gain
    assert recipes.get("cluster_gan").compile_options("jax") == {} == recipes.get("cluster_gan").compile_options("torch")
