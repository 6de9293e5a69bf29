"""Figures the chapters share: grids of images and bar charts of counts."""

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["image_grid"]


def image_grid(images, labels=None, ncols=10, title=None, cell_size=0.9, cmap="gray_r"):
    """Shows images in a grid, optionally with a label above each.

    Args:
        images: `(n, 28, 28)`, `(n, 28, 28, 1)` or `(n, 784)` array, uint8 or float in [0, 1].
        labels: optional sequence of `n` labels (numbers or strings).
        ncols: images per row.
        title: optional figure title.
        cell_size: inches per image.
        cmap: matplotlib colour map; `gray_r` draws ink dark on white paper.

    Returns:
        The matplotlib `Figure`.
    """
    images = np.asarray(images)
    if images.ndim not in (2, 3, 4) or len(images) == 0:
        raise ValueError(f"Expected a non-empty batch of images. Received: images.shape={images.shape}")
    n = len(images)
    side = int(round(np.sqrt(images[0].size)))
    if side * side != images[0].size:
        raise ValueError(f"Expected square single-channel images. Received: images.shape={images.shape}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"Expected {n} labels, one per image. Received: len(labels)={len(labels)}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell_size * ncols, cell_size * nrows + (0.4 if title else 0)), squeeze=False
    )
    vmax = 255 if images.dtype == np.uint8 else 1.0
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].reshape(side, side), cmap=cmap, vmin=0, vmax=vmax)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9, pad=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
