"""What only the chapters use: figures, the numerical checks of the derivations, latent-space
walks, the ring experiments of chapters 2 and 10 and the augmentation experiment of chapter 7.

* `companion.teaching.plotting`: image grids, latent maps, Markdown tables;
* `companion.teaching.theory`: the exact quantities of the VAE and GAN derivations;
* `companion.teaching.latent`: interpolation, manifold grids, attribute vectors;
* `companion.teaching.rings`: training a small VAE or GAN on the ring of Gaussians, and its plot;
* `companion.teaching.augmentation`: does generated data help a classifier with few labels?
"""
