"""The book's models: VAEs and GANs, in Keras 3, for TensorFlow, JAX and PyTorch.

* `MLPVAE`, `ConvVAE`, `ConditionalVAE` (`companion.models.vae`);
* `MLPGAN`, `DCGAN`, `ConditionalGAN`, `WGANGP` (`companion.models.gan`).

`MLPVAE` and `MLPGAN` are the source chapter's models, sized as there, made correct.
"""

from companion.models.gan import DCGAN, GAN, MLPGAN, WGANGP, ConditionalGAN, GANOptimizers
from companion.models.vae import VAE, ConditionalVAE, ConvVAE, MLPVAE

__all__ = [
    "ConditionalGAN",
    "ConditionalVAE",
    "ConvVAE",
    "DCGAN",
    "GAN",
    "GANOptimizers",
    "MLPGAN",
    "MLPVAE",
    "VAE",
    "WGANGP",
]
