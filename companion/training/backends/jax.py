"""The GAN training step on JAX: pure functions of the variables' values.

Keras's JAX trainer passes the state `(trainable, non_trainable, optimizer, metrics)`
values in and expects the new state back. The step evaluates the model's own loss
methods inside `keras.StatelessScope`, which maps every variable to a value, so the
same code that runs statefully on the other backends runs here as a pure function.
`jax.value_and_grad` differentiates with respect to one network's values at a time,
and each network's optimizer updates its values with `stateless_apply`.
"""

import jax
import keras


def input_gradient(function, x):
    return jax.grad(lambda v: jax.numpy.sum(function(v)))(x)


def _run(model, trainable, non_trainable, function):
    """Calls `function()` with the model's variables mapped to the given values;
    returns its result and the non-trainable values after it (BN statistics, seeds)."""
    mapping = list(zip(model.trainable_variables, trainable))
    mapping += list(zip(model.non_trainable_variables, non_trainable))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        out = function()
    return out, [scope.get_current_value(v) for v in model.non_trainable_variables]


def _replace(values, positions, new):
    values = list(values)
    for i, value in zip(positions, new):
        values[i] = value
    return values


def _step(model, optimizer, positions, opt_values, trainable, non_trainable, loss_function):
    """One gradient step on the variables at `positions`; returns loss, aux and new state."""

    def loss_of(subset, trainable, non_trainable):
        (loss, aux), non_trainable = _run(model, _replace(trainable, positions, subset), non_trainable, loss_function)
        return loss, (aux, non_trainable)

    subset = [trainable[i] for i in positions]
    (loss, (aux, non_trainable)), grads = jax.value_and_grad(loss_of, has_aux=True)(subset, trainable, non_trainable)
    subset, opt_values = optimizer.stateless_apply(opt_values, grads, subset)
    return loss, aux, _replace(trainable, positions, subset), non_trainable, opt_values


def train_step(model, state, data):
    trainable, non_trainable, optimizer_values, metrics_values = state
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    d_positions = [position[id(v)] for v in model.discriminator.trainable_variables]
    g_positions = [position[id(v)] for v in model.generator.trainable_variables]

    pair = model.optimizer
    own, d_opt, g_opt = pair.split(optimizer_values)

    # Inside the scope: a model may read its variables to label the batch (ClusterGAN's clusters).
    (real, labels), non_trainable = _run(model, trainable, non_trainable, lambda: model.unpack_batch(data))
    for part_real, part_labels in model.critic_batches(real, labels):
        d_loss, logits, trainable, non_trainable, d_opt = _step(
            model, model.d_optimizer, d_positions, d_opt, trainable, non_trainable,
            lambda: model.discriminator_loss(part_real, part_labels, input_gradient),
        )

    batch_size = real.shape[0]
    if g_positions:
        g_loss, _, trainable, non_trainable, g_opt = _step(
            model, model.g_optimizer, g_positions, g_opt, trainable, non_trainable,
            lambda: (model.generator_loss(batch_size, labels), None),
        )
        _, non_trainable = _run(model, trainable, non_trainable, model.update_ema)
    else:
        g_loss, non_trainable = _run(model, trainable, non_trainable, lambda: model.generator_loss(batch_size, labels))

    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_values))) as scope:
        logs = model.update_metrics(d_loss, g_loss, *logits)
    metrics_values = [scope.get_current_value(v) for v in model.metrics_variables]
    return logs, (trainable, non_trainable, pair.join(pair.count_step(own), d_opt, g_opt), metrics_values)
