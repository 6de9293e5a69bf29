"""The ring of Gaussians experiments of chapters 2 and 10: a small GAN and a small VAE trained
on 2-D points, and the figure that shows their samples over the data.

The ring (`companion.data.synthetic.ring_of_gaussians`) is the classic test of mode collapse:
eight modes, each easy to hit, so a generator that covers one or two of them is easy to see.

Example:

>>> ring, _ = synthetic.ring_of_gaussians(20000, std=0.05, seed=0)
>>> gan, history = train_gan(ring, epochs=30)
>>> draw(plt.gca(), ring, gan.generate(2000, seed=1), "GAN")
"""

import keras

from companion import validation
from companion.data import synthetic

__all__ = ["draw", "train_gan", "train_vae"]


def train_gan(points, *, epochs, batch_size=256, d_learning_rate=1e-3, g_learning_rate=1e-3, seed=0, callbacks=()):
    """A `VectorGAN` (two hidden layers of 128 units in each network, 2-D noise) trained on
    `points` `(n, 2)` with Adam (beta_1 = 0.5) at the two learning rates.

    Seeds Keras's global generators with `seed` first, so a run is repeatable.
    Returns `(model, history)`, the history's dict of per-epoch losses.
    """
    from companion.models import VectorGAN

    epochs = validation.positive_int("epochs", epochs)
    for name, rate in (("d_learning_rate", d_learning_rate), ("g_learning_rate", g_learning_rate)):
        validation.number(name, rate, low=0.0, low_open=True)
    keras.utils.set_random_seed(validation.non_negative("seed", seed, integer=True))
    model = VectorGAN(data_dim=points.shape[1], latent_dim=2, hidden_units=(128, 128), seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=0.5))
    history = model.fit(points, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=list(callbacks))
    return model, history.history


def train_vae(points, *, epochs, batch_size=128, learning_rate=1e-3, seed=0):
    """A `SeriesVAE` on `points` `(n, d)` read as series of length d (a Gaussian decoder with
    a learned noise level, 2-D latent, two hidden layers of 128 units), trained with Adam.

    Seeds Keras's global generators with `seed` first. Returns the model.
    """
    from companion.models import SeriesVAE

    epochs = validation.positive_int("epochs", epochs)
    keras.utils.set_random_seed(validation.non_negative("seed", seed, integer=True))
    model = SeriesVAE(length=points.shape[1], latent_dim=2, hidden_units=(128, 128), seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(points, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def draw(ax, ring, points, title, limit=2.6, background=1000):
    """Draws the first `background` points of `ring` in grey and `points` in red on `ax`, square,
    within +-`limit`, without ticks; returns `synthetic.mode_coverage(points)`, whose modes
    covered and share of good samples the caller may put in `title` (a format string with the
    fields `modes` and `good`)."""
    coverage = synthetic.mode_coverage(points)
    ax.scatter(*ring[:background].T, s=1, c="lightgrey")
    ax.scatter(*points.T, s=1, c="tab:red")
    ax.set_title(title.format(modes=coverage["modes_covered"], good=coverage["high_quality"]), fontsize=9)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return coverage
