"""How each shipped model is built, fed and trained: one recipe per model name.

The command line (`python -m companion train NAME`) and the tests use these recipes, so
the weights under `companion/weights/` come from code that is itself tested.
"""

import dataclasses

import keras

from companion import data, evaluation
from companion.models import ACGAN, ARVAE, ClusterGAN, ClusterWGANGP, Denoiser, Diffusion, MLPGAN, ConditionalVAE, ConvVAE, MLPVAE
from companion.models.classifier import build_classifier

__all__ = ["CLASSIFIER", "DENOISER", "DIFFUSION", "GAN", "Kind", "RECIPES", "Recipe", "VAE", "get"]


class Kind:
    """What training and measuring one kind of model takes; every recipe has one.

    The five kinds (`CLASSIFIER`, `VAE`, `GAN`, `DENOISER`, `DIFFUSION`) hold, each in one place, what
    differs between them: how the model is compiled, what its batches carry, whether
    TensorFlow compiles it with XLA, and what `python -m companion evaluate` measures.
    """

    name = None
    xla = False  # on TensorFlow, train with jit_compile=True (see Recipe.compile_options)
    measured_when_trained = False  # the command line evaluates it right after training

    def compile(self, recipe, model, optimizer, **options):
        """Compiles `model`; `optimizer()` makes the recipe's optimizer."""
        model.compile(optimizer=optimizer(), **options)

    def batch_options(self, recipe):
        """`MNISTBatches` options besides the images, batch size, seed and epoch."""
        return {"with_labels": recipe.conditional}

    def needs_classifier(self, recipe):
        """Whether `evaluate` needs the evaluation classifier."""
        return False

    def evaluate(self, recipe, model, x_test, y_test, *, x_train=None, classifier=None, k=1000, seed=0, progress=True):
        raise NotImplementedError

    def __repr__(self):
        return f"recipes.{self.name.upper()}"


class _Classifier(Kind):
    name = "classifier"
    measured_when_trained = True

    def compile(self, recipe, model, optimizer, **options):
        model.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], **options)

    def batch_options(self, recipe):
        return {"with_labels": True}

    def evaluate(self, recipe, model, x_test, y_test, **kwargs):
        return evaluation.evaluate_classifier(model, x_test, y_test)


class _VAE(Kind):
    name = "vae"
    xla = True

    def batch_options(self, recipe):
        return {"with_labels": recipe.conditional, "labels_as_input": recipe.conditional}

    def needs_classifier(self, recipe):
        return recipe.conditional

    def evaluate(self, recipe, model, x_test, y_test, *, classifier=None, k=1000, seed=0, progress=True, **kwargs):
        return evaluation.evaluate_vae(model, x_test, y_test, classifier=classifier, k=k, seed=seed, progress=progress)


class _GAN(Kind):
    name = "gan"
    xla = True

    def compile(self, recipe, model, optimizer, **options):
        model.compile(**recipe.gan_compile, **options)  # a GAN builds its own two optimizers: no schedule

    def batch_options(self, recipe):
        return {"with_labels": recipe.conditional, "drop_remainder": True}

    def needs_classifier(self, recipe):
        return True

    def evaluate(self, recipe, model, x_test, y_test, *, x_train=None, classifier=None, seed=0, **kwargs):
        return evaluation.evaluate_gan(model, x_test, x_train=x_train, classifier=classifier, seed=seed)


class _Denoiser(Kind):
    name = "denoiser"

    def evaluate(self, recipe, model, x_test, y_test, *, x_train=None, seed=0, **kwargs):
        return evaluation.evaluate_denoiser(model, x_test, x_train, seed=seed)


class _Diffusion(Kind):
    name = "diffusion"
    xla = False  # measured: TensorFlow trains it faster without XLA (oneDNN convolutions)

    def needs_classifier(self, recipe):
        return True

    def evaluate(self, recipe, model, x_test, y_test, *, x_train=None, classifier=None, seed=0, steps=50, timed_images=1000,
                 card=None, progress=True, **kwargs):
        """`evaluation.evaluate_diffusion`, then, given the model's `card` (a dict), the three
        families side by side (`evaluation.families`) under `families`."""
        real = evaluation.classifier_features(classifier, x_test) if classifier is not None else None
        results = evaluation.evaluate_diffusion(model, x_test, x_train=x_train, classifier=classifier, seed=seed, steps=steps,
                                                timed_images=timed_images, progress=progress, real_features=real)
        if card is not None:
            from companion.evaluation import families

            card = {"train_seconds": None, **card, "parameters": model.count_params()}
            results["families"] = families.compare_families((recipe.name, card, results), x_test, classifier, seed=seed,
                                                            real_features=real)
        return results


CLASSIFIER, VAE, GAN, DENOISER, DIFFUSION = _Classifier(), _VAE(), _GAN(), _Denoiser(), _Diffusion()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What training one model takes.

    Attributes:
        name: the model's name on the command line and in `companion/weights/`.
        kind: `CLASSIFIER`, `VAE`, `GAN`, `DENOISER` or `DIFFUSION` (a `Kind`).
        build: `build(seed)` returns the uncompiled model.
        epochs, batch_size, learning_rate: training defaults.
        conditional: the model takes labels.
        binarize: "dynamic" to train on binary images redrawn every epoch (the VAEs).
        gan_compile: for GANs, what `GAN.compile` takes besides the options (e.g. the two
            learning rates, `d_learning_rate` and `g_learning_rate`).
        adam: further arguments of the Adam optimizer (e.g. `use_ema`, `ema_momentum`).
    """

    name: str
    kind: Kind
    build: callable
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    conditional: bool = False
    binarize: str = None
    gan_compile: dict = dataclasses.field(default_factory=dict)
    adam: dict = dataclasses.field(default_factory=dict)

    def compile_options(self, backend=None):
        """The `Model.compile` options the command line trains with on `backend` (default: the active one).

        On TensorFlow, XLA (`jit_compile=True`) for the kinds that gain from it (the VAEs and
        GANs: `Kind.xla`, measured with `benchmark.throughput`); Keras's default ("auto")
        leaves XLA off on a machine without a GPU. JAX compiles with XLA anyway; PyTorch's
        `jit_compile` would mean `torch.compile`, which is not used here.

        Under a TensorFlow distribution strategy with more than one replica (`--distribute`),
        XLA stays off: a compiled step cannot read a variable mirrored on another device
        ("Trying to access resource ... located in device CPU:1 from device CPU:0").

        Under the `mixed_bfloat16` policy XLA stays off too: on the CPU, XLA computes bfloat16 no
        faster than float32, where TensorFlow's own kernels (oneDNN) use the bfloat16 units. On
        a 2-core AMD EPYC (family 26, AVX512-BF16), the cluster GAN's step ran 1.01x float32's
        with XLA and 1.95x without (`bench/bf16.py`; issue 20's closing note).
        """
        backend = backend or keras.backend.backend()
        if backend != "tensorflow" or not self.kind.xla or keras.config.dtype_policy().name == "mixed_bfloat16":
            return {}
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            return {}
        return {"jit_compile": True}

    def compile(self, model, steps_per_epoch, epochs, **options):
        """Compiles `model` with the recipe's optimizer (Adam on a cosine schedule over the
        whole run) and loss; `options` (`jit_compile`, `steps_per_execution`, ...) go to
        `Model.compile` as they are."""
        def optimizer():
            steps = steps_per_epoch * epochs
            schedule = keras.optimizers.schedules.CosineDecay(self.learning_rate, decay_steps=steps, alpha=0.05)
            return keras.optimizers.Adam(schedule, **self.adam)

        self.kind.compile(self, model, optimizer, **options)  # a GAN needs no steps_per_epoch: it makes its own
        return model

    def batches(self, x, y, batch_size=None, seed=0, epoch=0, shuffle=True):
        """The training batches: images in [0, 1] (binary for VAEs), with labels where needed."""
        options = dict(self.kind.batch_options(self))
        labels = y if options.pop("with_labels") else None
        return data.MNISTBatches(x, labels, batch_size=batch_size or self.batch_size, shuffle=shuffle, binarize=self.binarize,
                                 seed=seed, epoch=epoch, **options)

    def evaluate(self, model, x_test, y_test, **kwargs):
        """What `python -m companion evaluate` measures for this model (`companion.evaluation`)."""
        return self.kind.evaluate(self, model, x_test, y_test, **kwargs)


RECIPES = {
    recipe.name: recipe
    for recipe in [
        Recipe("classifier", CLASSIFIER, lambda seed: build_classifier(seed=seed), epochs=12, batch_size=128),
        Recipe("mlp_vae", VAE, lambda seed: MLPVAE(seed=seed), epochs=100, batch_size=128, binarize="dynamic"),
        Recipe("conv_vae", VAE, lambda seed: ConvVAE(dense_units=64, seed=seed), epochs=30, batch_size=128, binarize="dynamic"),
        Recipe("ar_vae", VAE, lambda seed: ARVAE(seed=seed), epochs=200, batch_size=128, binarize="dynamic"),
        Recipe(
            "conditional_vae", VAE, lambda seed: ConditionalVAE(latent_dim=4, seed=seed), epochs=60, batch_size=128,
            conditional=True, binarize="dynamic",
        ),
        # The source's sizes; a spectrally normalized discriminator keeps it from collapsing
        # (chapter 6 trains both side by side). 60 epochs rather than 30: the longer run covers
        # more digits (its card records recall and the digits read).
        Recipe("mlp_gan", GAN, lambda seed: MLPGAN(spectral_norm=True, seed=seed), epochs=60, batch_size=128),
        # k-means clusters as classes: the one change of the ablation (bench/gan_ablation.md)
        # that makes digits the classifier reads with confidence. The moving average of the
        # generator's weights costs at the ablation's short budget but pays over the whole run
        # (bench/results/gan_variants.jsonl). The epochs fill the hour's budget on the 2-core
        # CPU; the card records the training time.
        Recipe("cluster_gan", GAN, lambda seed: ClusterGAN(clusters=20, ema_decay=0.999, seed=seed), epochs=52, batch_size=128),
        Recipe("acgan", GAN, lambda seed: ACGAN(seed=seed), epochs=10, batch_size=128, conditional=True),
        # Two critic steps per generator step, not WGAN-GP's usual five, so that the hour's budget
        # buys more generator steps; the card records the training time and FID.
        Recipe(
            "cluster_wgan_gp", GAN, lambda seed: ClusterWGANGP(clusters=20, ema_decay=0.999, n_critic=2, seed=seed), epochs=28,
            batch_size=128,
        ),
        # One uninterrupted run, its cosine schedule spread over all the epochs: a run resumed to
        # more epochs keeps its first schedule (the card holds the gain over the tuned filters).
        Recipe("denoiser", DENOISER, lambda seed: Denoiser(bottleneck_convs=2, seed=seed), epochs=24, batch_size=128),
        # Fifteen epochs took 45.3 min on the card's 2-core AMD EPYC (family 26, model 2); on a
        # family 25 one an epoch of this network took 301 s, so ten fit the hour there. All figures
        # below are FIDs of 1,000 DDIM samples (50 steps, eta 1 unless said) against the first
        # 1,000 test images, each after one epoch on torch unless said. Batches of 64: 245 against
        # 364 with batches of 128 and 262 with 32, at 134, 134 and 123 training images per second
        # (`python -m companion bench diffusion --backend torch --batch-size B`). Filters 16/64/64
        # instead of 32/64/64: 254 against 245 per epoch, for 70% of the epoch's time, so more
        # epochs fit. Learning rate 2e-3: 196 against 245 at 1e-3 (both with 32/64/64), 206 with
        # 16/64/64. Fifteen epochs of this recipe: 23.05, against 37.18 for seven epochs of
        # 32/64/64 at 1e-3. The network predicts v, not the noise: 500 samples had FID 413 (eta 0)
        # and 363 (eta 1) against 1,644 and 749 for the noise. No moving average of the weights:
        # in the same fifteen-epoch run, Adam's EMA at 0.999 gave 23.14 against 23.05 for the last
        # step's weights (the cosine schedule has already annealed them); in a seven-epoch
        # noise-predicting run at batch 128 (500 samples) it gave 142 against 72, as Keras starts
        # the average at the first step's weights without warm-up (0.999^3283 = 3.7% of it).
        # Eighteen epochs of the same recipe (48.0 min, same CPU): 24.73 on 1,000 samples and 23.38
        # on the card's 10,000, against 23.05 and 17.51 for fifteen; longer did not help here.
        # Issue 19's closing notes have the commands. Sampling defaults to eta = 1, the card's
        # sampler (chapter 10).
        Recipe("diffusion", DIFFUSION, lambda seed: Diffusion(prediction="v", eta=1.0, filters=(16, 64, 64), seed=seed),
               epochs=15, batch_size=64, learning_rate=2e-3),
    ]
}


# Names the GANs were shipped under before they were named after their classes; the results
# in bench/results/*.jsonl recorded before the change use them.
FORMER_NAMES = {"dcgan": "cluster_gan", "wgan_gp": "cluster_wgan_gp", "conditional_gan": "acgan"}


def get(name):
    if name not in RECIPES:
        hint = f" ({name!r} is now {FORMER_NAMES[name]!r})" if name in FORMER_NAMES else ""
        raise ValueError(f"Expected a model among {', '.join(RECIPES)}. Received: {name!r}{hint}")
    return RECIPES[name]

