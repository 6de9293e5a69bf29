"""Published likelihoods on binarized MNIST, with the protocol of each figure.

A likelihood on "binarized MNIST" means one of two data sets, and figures from the two do
not belong in one ranking:

* ``"dynamic"``: the training images are binarized anew, pixel by pixel as Bernoulli
  draws of their grey levels, every time the model sees them, and the test images are
  binarized stochastically as well (Burda et al. (2016) and the papers that compare with
  them). The book's VAEs are trained and measured this way (`data.MNISTBatches` with
  ``binarize="dynamic"``; the test set binarized once by `data.binarize_static`).
* ``"static"``: one fixed binarization of Larochelle's split (Salakhutdinov and Murray
  (2008)), the same for every model and every epoch; a model can overfit it.

Each record says what kind of model it is (the decoder: factorized or autoregressive),
how many stochastic layers it has, how the figure was estimated (``k`` importance
samples, or ``None`` for an exact likelihood) and where it was printed. Each figure was
checked against the paper's text, or, where marked in `where`, against a faithful copy of
its table.

Example:

>>> [r.model for r in published.mnist_nll(binarization="dynamic")][:2]
['VAE, one stochastic layer', 'VAE, two stochastic layers']
"""

from dataclasses import dataclass

__all__ = ["PublishedNLL", "MNIST_NLL", "mnist_nll", "BINARIZATIONS", "DECODERS"]

BINARIZATIONS = ("dynamic", "static")
_AUTHORS = {
    "burda2016importance": "Burda et al. (2016)",
    "kingma2016improved": "Kingma et al. (2016)",
    "chen2017variational": "Chen et al. (2017)",
    "gulrajani2017pixelvae": "Gulrajani et al. (2017)",
    "vandenoord2016pixel": "van den Oord et al. (2016)",
}
DECODERS = ("factorized", "autoregressive", "none")


@dataclass(frozen=True)
class PublishedNLL:
    """One published test negative log-likelihood on binarized MNIST, in nats per image.

    Attributes:
        model: the model, as its paper names it.
        nll: the figure (lower is better).
        decoder: "factorized" (pixels independent given z), "autoregressive" (each pixel
            given the ones before it) or "none" (an autoregressive model without latents).
        stochastic_layers: layers of latent variables (0 for a model without latents).
        binarization: "dynamic" or "static" (see the module's docstring).
        k: importance samples of the estimate, or None where the likelihood is exact.
        cite: the key of the paper in `book/references.bib`.
        where: where in the paper the figure is printed.
    """

    model: str
    nll: float
    decoder: str
    stochastic_layers: int
    binarization: str
    k: int | None
    cite: str
    where: str

    @property
    def reference(self):
        """The paper and place, as a reader looks it up: "Burda et al. (2016), Table 1"."""
        return f"{_AUTHORS[self.cite]}, {self.where}"


MNIST_NLL = (
    # Burda et al. (2016), Table 1, test log-likelihoods estimated with k = 5000; training on
    # a fresh binarization each time an image is seen (the authors' repository, yburda/iwae).
    PublishedNLL("VAE, one stochastic layer", 86.76, "factorized", 1, "dynamic", 5000, "burda2016importance", "Table 1"),
    PublishedNLL("VAE, two stochastic layers", 85.33, "factorized", 2, "dynamic", 5000, "burda2016importance", "Table 1"),
    PublishedNLL("IWAE (k = 50), one stochastic layer", 84.78, "factorized", 1, "dynamic", 5000, "burda2016importance", "Table 1"),
    PublishedNLL("IWAE (k = 50), two stochastic layers", 82.90, "factorized", 2, "dynamic", 5000, "burda2016importance", "Table 1"),
    # Kingma et al. (2016), Table 1: a ResNet VAE, 32 latents, with an inverse autoregressive
    # flow in the posterior; "dynamically sampled binarized MNIST", 128 importance samples.
    PublishedNLL("ResNet VAE with IAF posterior", 79.10, "factorized", 1, "dynamic", 128, "kingma2016improved", "Table 1"),
    # Chen et al. (2017): one 64-dimensional latent, an autoregressive-flow prior and a PixelCNN
    # decoder; 4096 importance samples. Table 2 is dynamic, Table 1 static (Larochelle's version).
    PublishedNLL("VLAE (PixelCNN decoder, flow prior)", 78.53, "autoregressive", 1, "dynamic", 4096, "chen2017variational", "Table 2"),
    PublishedNLL("VLAE (PixelCNN decoder, flow prior)", 79.03, "autoregressive", 1, "static", 4096, "chen2017variational", "Table 1"),
    # Gulrajani et al. (2017), Table 1: the gated PixelVAE without upsampling, one latent level;
    # about 79.02 with 1000 importance samples (its ELBO: at most 79.66).
    PublishedNLL("PixelVAE (gated PixelCNN decoder)", 79.02, "autoregressive", 1, "static", 1000, "gulrajani2017pixelvae", "Table 1"),
    # van den Oord et al. (2016), exact likelihoods of models without latents (as quoted in
    # the tables of Gulrajani et al. (2017) and Chen et al. (2017)).
    PublishedNLL("PixelCNN", 81.30, "none", 0, "static", None, "vandenoord2016pixel", "quoted in Table 1 of Gulrajani et al. (2017)"),
    PublishedNLL("PixelRNN (Diagonal BiLSTM, 7 layers)", 79.20, "none", 0, "static", None, "vandenoord2016pixel", "quoted in Table 1 of Chen et al. (2017)"),
)


def mnist_nll(binarization=None, decoder=None):
    """The records of `MNIST_NLL`, optionally only those of one `binarization` and `decoder`."""
    if binarization is not None and binarization not in BINARIZATIONS:
        raise ValueError(f"Expected `binarization` to be one of {BINARIZATIONS} or None. Received: binarization={binarization!r}")
    if decoder is not None and decoder not in DECODERS:
        raise ValueError(f"Expected `decoder` to be one of {DECODERS} or None. Received: decoder={decoder!r}")
    return [
        r for r in MNIST_NLL
        if (binarization is None or r.binarization == binarization) and (decoder is None or r.decoder == decoder)
    ]
