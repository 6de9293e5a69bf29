"""The book's models: VAEs and GANs, in Keras 3, for TensorFlow, JAX and PyTorch.

* `MLPVAE`, `ConvVAE`, `ConditionalVAE`, `ARVAE` (`companion.models.vae`; `ARVAE`'s
  autoregressive decoder is a `MADE`, `companion.models.made`);
* `MLPGAN`, `DCGAN`, `InfoGAN` (a DCGAN with a categorical code learned without labels), `ClusterGAN`
  (a DCGAN trained on k-means clusters of the images in place of labels), `ClusterWGANGP`, `ConditionalGAN`, `ACGAN` (conditional, with an auxiliary classifier),
  `WGANGP` (`companion.models.gan`);
* `Denoiser`, a small U-Net trained to remove Gaussian noise (`companion.models.denoiser`);
* `Diffusion`, a denoising diffusion model with a U-Net noise predictor, sampled by DDPM or DDIM
  (`companion.models.diffusion`);
* `SeriesVAE`, a VAE with a Gaussian likelihood for 1-D time series (`companion.models.series`);
* `VectorGAN` and `Autoencoder`, small models for the theory chapters (`companion.models.small`);
* `BernoulliPixels` and `BernoulliMixture`, pixel-independent baselines (`companion.models.baselines`),
  and `PCA`, `kmeans` (`companion.models.pca`), imported from their modules.

`MLPVAE` and `MLPGAN` are the source chapter's models, sized as there, made correct.
"""

from companion.models.denoiser import Denoiser
from companion.models.diffusion import Diffusion
from companion.models.gan import ACGAN, DCGAN, GAN, MLPGAN, WGANGP, ClusterGAN, ClusterWGANGP, ConditionalGAN, GANOptimizers, InfoGAN
from companion.models.made import MADE
from companion.models.series import SeriesVAE
from companion.models.small import Autoencoder, VectorGAN
from companion.models.vae import ARVAE, VAE, ConditionalVAE, ConvVAE, MLPVAE

__all__ = [
    "ACGAN",
    "Autoencoder",
    "ARVAE",
    "ClusterGAN",
    "ClusterWGANGP",
    "ConditionalGAN",
    "ConditionalVAE",
    "ConvVAE",
    "DCGAN",
    "Denoiser",
    "Diffusion",
    "GAN",
    "GANOptimizers",
    "InfoGAN",
    "MADE",
    "MLPGAN",
    "MLPVAE",
    "SeriesVAE",
    "VAE",
    "VectorGAN",
    "WGANGP",
]
