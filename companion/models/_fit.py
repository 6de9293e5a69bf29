"""What the models' `fit` and batched methods share: slices of work, and `fit`'s arguments."""

__all__ = ["chunks", "fit_arguments"]


def chunks(n, batch_size):
    """Slices that cover range(n) in chunks of `batch_size`."""
    return [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def fit_arguments(x, kwargs):
    """`fit` keyword arguments, with Keras's batch-order shuffle off for `MNISTBatches`.

    `MNISTBatches` shuffles its examples itself, from `(seed, epoch)`; Keras would also
    permute the order of the batches with Python's global random state, which a resumed
    run cannot restore. With it off, a resumed run sees exactly the batches an
    uninterrupted one would have.
    """
    from companion.data import MNISTBatches

    if isinstance(x, MNISTBatches) and "shuffle" not in kwargs:
        kwargs = {**kwargs, "shuffle": False}
    return kwargs
