"""One module per Keras backend, each with `train_step(model, ...)` and `input_gradient`."""
