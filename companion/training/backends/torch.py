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


def _onednn_runs(dtype):
    """Whether PyTorch sends a CPU convolution in `dtype` to oneDNN (else to its slow path)."""
    mkldnn = torch.backends.mkldnn
    if not (mkldnn.is_available() and mkldnn.enabled):
        return False
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if dtype == torch.float16:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    return True


def install_half_conv_fix():
    """Lets Keras's PyTorch convolutions train in bfloat16 where oneDNN does not take them.

    Keras lays a convolution's kernel out channels-last in memory. Where PyTorch's oneDNN
    cannot run a 16-bit convolution on the CPU (a CPU without AVX-512, oneDNN switched off),
    it falls back to its own `slow_conv2d`, whose backward pass refuses a kernel of one output
    channel so laid out (the convolutional VAE's last layer): "slow_conv2d: grad_weight must
    be contiguous". For 16-bit tensors bound for that path this gives Keras plain contiguous
    ones; everything else is left as Keras makes it. Idempotent; `precision.policy_scope`
    installs it when a run asks for bfloat16 on PyTorch.
    """
    from keras.src.backend.torch import nn

    if getattr(nn._maybe_convert_to_channels_last, "_companion_fix", False):
        return
    original = nn._maybe_convert_to_channels_last

    def convert(tensor):
        if tensor.dtype in (torch.bfloat16, torch.float16) and not _onednn_runs(tensor.dtype):
            return tensor.contiguous()
        return original(tensor)

    convert._companion_fix = True
    nn._maybe_convert_to_channels_last = convert
