"""What the models' `fit` and batched methods share: slices of work, `fit`'s arguments, and what
`fit` must do after Keras's."""

__all__ = ["chunks", "fit", "fit_arguments", "unshare_averaged_weights"]


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


def unshare_averaged_weights(model):
    """After a `fit` with an optimizer's `use_ema`, gives each weight a buffer of its own.

    Keras ends `fit` by assigning the optimizer's moving averages to the weights; on JAX each
    weight and its average then share one buffer, and the next `fit` fails ("Attempt to donate
    the same buffer twice"). Copying the values parts them, on every backend alike.
    """
    if getattr(getattr(model, "optimizer", None), "use_ema", False):
        from keras import ops

        for variable in model.trainable_variables:
            variable.assign(ops.copy(variable.value))


def fit(parent_fit, model, x, y, args, kwargs):
    """A model's `fit`: Keras's (`parent_fit`, i.e. `super().fit`) with `fit_arguments`, then
    `unshare_averaged_weights`."""
    history = parent_fit(x, y, *args, **fit_arguments(x, kwargs))
    unshare_averaged_weights(model)
    return history
