"""Data-parallel training on every local device, with the engine each backend already has.

`data_parallel()` is a context manager: build, compile and fit the model inside it, and each
batch is split across the devices, the gradients are combined, and every device keeps the
same weights.

* JAX: Keras's distribution API, `keras.distribution.DataParallel` over
  `keras.distribution.list_devices()`: the batch is sharded along its first axis and the
  compiled step computes the gradient of the *global* batch's loss (XLA inserts the
  all-reduce), so the step is the single-device step, up to the order of floating-point sums.
* TensorFlow: `tf.distribute.MirroredStrategy` over the GPUs, or over the logical CPUs when
  there is no GPU. Each replica computes its part's mean loss; `replica_loss_scale()` is the
  factor (1 / replicas) that makes the summed gradients those of the global mean, and the
  companion's losses apply it.
* PyTorch: not supported here (data parallelism there needs `torchrun` and
  `DistributedDataParallel`, outside Keras's training loop); a clear error says so.

On a CPU-only machine, two devices can be simulated for testing:
`XLA_FLAGS=--xla_force_host_platform_device_count=2` for JAX (set before JAX starts), and
`tf.config.set_logical_device_configuration` for TensorFlow (`split_cpu()` here).

    with distribute.data_parallel() as devices:
        model = MLPVAE(seed=0)
        model.compile(optimizer="adam")
        model.fit(batches, epochs=1)
"""

import contextlib

import keras

__all__ = ["data_parallel", "replica_loss_scale", "scale_for_replicas", "split_cpu"]


def split_cpu(count):
    """TensorFlow only: presents the CPU as `count` logical devices (call before TensorFlow starts)."""
    import tensorflow as tf

    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"Expected `count` to be a positive integer. Received: count={count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


@contextlib.contextmanager
def data_parallel(min_devices=2):
    """Builds, compiles and trains the models created inside it on all local devices.

    Yields the list of device names. Raises `RuntimeError` where fewer than `min_devices`
    devices are present, and on the PyTorch backend.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        _check_count(devices, min_devices, "XLA_FLAGS=--xla_force_host_platform_device_count=2 before JAX starts")
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield devices
        finally:
            keras.distribution.set_distribution(previous)
    elif backend == "tensorflow":
        import tensorflow as tf

        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        _check_count(devices, min_devices, "companion.training.distribute.split_cpu(2) before TensorFlow starts")
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            yield devices
    else:
        raise RuntimeError(f"Data-parallel training is supported on the jax and tensorflow backends; "
                           f"the active backend is {backend!r} (PyTorch needs torchrun and DistributedDataParallel)")


def _check_count(devices, min_devices, hint):
    if len(devices) < min_devices:
        raise RuntimeError(f"Data-parallel training needs at least {min_devices} devices; found {len(devices)}: "
                           f"{devices}. On a CPU-only machine, simulate them with {hint}.")


def replica_loss_scale():
    """1 / (replicas in sync) inside a TensorFlow `MirroredStrategy`, else 1.

    A replica's loss is the mean over its part of the batch; the strategy sums the replicas'
    gradients, so scaling each replica's loss by this factor gives the gradient of the mean
    over the global batch, the same as on one device.
    """
    if keras.backend.backend() != "tensorflow":
        return 1.0
    import tensorflow as tf

    return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(loss):
    """`loss` times `replica_loss_scale()`: what a custom `compute_loss` or training step
    returns or differentiates, so that replicas' summed gradients are those of the global mean."""
    scale = replica_loss_scale()
    return loss if scale == 1.0 else loss * scale
