"""Figures and tables the chapters share: grids of images, 2-D latent maps coloured by
label, and Markdown tables that the book renders as tables."""

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["image_grid", "latent_scatter", "markdown_table", "mosaic"]


def _square_side(images):
    """The side of a non-empty batch of square single-channel images (`(n, 784)`,
    `(n, 28, 28)` or `(n, 28, 28, 1)`), or a ValueError that shows the shape received."""
    side = int(round(np.sqrt(images[0].size))) if images.ndim in (2, 3, 4) and len(images) else 0
    if not side or side * side != images[0].size:
        raise ValueError(f"Expected a non-empty batch of square single-channel images. Received: images.shape={images.shape}")
    return side


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
    side = _square_side(images)
    n = len(images)
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


def mosaic(images, ncols=10, pad=2, background=0.0):
    """Tiles square single-channel images into one array, row by row, with `pad` pixels of
    `background` between them: one `imshow` instead of an axes per image, so that several
    grids can share a figure (one per subplot).

    Returns: `(rows * (side + pad) - pad, ncols * (side + pad) - pad)` float array.
    """
    images = np.asarray(images, dtype=np.float64)
    side = _square_side(images)
    n = len(images)
    if not isinstance(ncols, int) or ncols < 1 or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"Expected a positive integer `ncols` and a non-negative integer `pad`. Received: ncols={ncols!r}, pad={pad!r}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    step = side + pad
    out = np.full((nrows * step - pad, ncols * step - pad), float(background))
    for i, image in enumerate(images.reshape(n, side, side)):
        row, col = divmod(i, ncols)
        out[row * step : row * step + side, col * step : col * step + side] = image
    return out


def latent_scatter(z, labels, ax=None, title=None, max_points=5000, seed=0):
    """Scatters 2-D latents coloured by their digit, with a legend.

    Args:
        z: `(n, 2)` latents (encoder means, PCA scores, ...).
        labels: `(n,)` integer labels 0-9.
        ax: matplotlib axes to draw on (a new figure when None).
        max_points: at most this many points, a random subset, so the plot stays readable.

    Returns:
        The axes.
    """
    z = np.asarray(z)
    labels = np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2 or labels.shape != (len(z),):
        raise ValueError(f"Expected `z` of shape (n, 2) and `labels` of shape (n,). Received: {z.shape}, {labels.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    keep = np.random.default_rng(seed).permutation(len(z))[:max_points]
    cmap = plt.get_cmap("tab10")
    for digit in np.unique(labels):
        chosen = keep[labels[keep] == digit]
        ax.scatter(z[chosen, 0], z[chosen, 1], s=3, alpha=0.6, color=cmap(int(digit) % 10), label=str(digit))
    ax.legend(markerscale=4, fontsize=8, ncol=2, loc="best", frameon=False)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


def markdown_table(rows, headers, formats=None):
    """A Markdown table (an `IPython.display.Markdown`, rendered as a table in notebooks and
    in the book) of `rows`, sequences as long as `headers`.

    Args:
        rows: the table's rows.
        headers: column titles.
        formats: optional format specs per column (`"{:.2f}"`), or None to use `str`.
    """
    from IPython.display import Markdown

    headers = list(headers)
    formats = list(formats) if formats is not None else [None] * len(headers)
    if len(formats) != len(headers):
        raise ValueError(f"Expected {len(headers)} `formats`, one per header. Received: {len(formats)}")
    escape = lambda text: str(text).replace("|", "\\|")
    lines = ["| " + " | ".join(map(escape, headers)) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(headers):
            raise ValueError(f"Expected rows of {len(headers)} cells. Received: row {i} has {len(row)}")
        cells = [(f.format(v) if (f and v is not None) else ("" if v is None else str(v))) for f, v in zip(formats, row)]
        lines.append("| " + " | ".join(map(escape, cells)) + " |")
    return Markdown("\n".join(lines))
