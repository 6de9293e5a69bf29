"""The GAN training step on TensorFlow: `tf.GradientTape`, then `optimizer.apply`."""

import tensorflow as tf

from companion.training.distribute import scale_for_replicas


def input_gradient(function, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = function(x)
    # Recorded by any enclosing tape, so the gradient penalty can itself be differentiated.
    return tape.gradient(out, x)


def train_step(model, data):
    real, labels = model.unpack_batch(data)
    d_vars = model.discriminator.trainable_variables
    for part_real, part_labels in model.critic_batches(real, labels):
        with tf.GradientTape() as tape:
            d_loss, (real_logits, fake_logits) = model.discriminator_loss(part_real, part_labels, input_gradient)
        if d_vars:
            model.d_optimizer.apply(tape.gradient(scale_for_replicas(d_loss), d_vars), d_vars)

    g_vars = model.generator.trainable_variables
    with tf.GradientTape() as tape:
        g_loss = model.generator_loss(tf.shape(real)[0], labels)
    if g_vars:
        model.g_optimizer.apply(tape.gradient(scale_for_replicas(g_loss), g_vars), g_vars)
        model.update_ema()
    model.optimizer.iterations.assign_add(1)
    return model.update_metrics(d_loss, g_loss, real_logits, fake_logits)
