"""The GAN training step on PyTorch: `backward()`, then `optimizer.apply` without grad."""

import torch


def input_gradient(function, x):
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(function(x).sum(), x, create_graph=True)
    return grad


def _apply(model, optimizer, loss, variables):
    if not variables:  # a frozen network
        return
    model.zero_grad()
    loss.backward()
    gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        optimizer.apply(gradients, variables)


def train_step(model, data):
    real, labels = model.unpack_batch(data)
    d_vars = model.discriminator.trainable_variables
    for part_real, part_labels in model.critic_batches(real, labels):
        d_loss, (real_logits, fake_logits) = model.discriminator_loss(part_real, part_labels, input_gradient)
        _apply(model, model.d_optimizer, d_loss, d_vars)

    g_vars = model.generator.trainable_variables
    g_loss = model.generator_loss(real.shape[0], labels)
    if g_vars:
        _apply(model, model.g_optimizer, g_loss, g_vars)
        with torch.no_grad():
            model.update_ema()
    model.zero_grad()
    with torch.no_grad():
        model.optimizer.iterations.assign_add(1)
        return model.update_metrics(d_loss.detach(), g_loss.detach(), real_logits.detach(), fake_logits.detach())
