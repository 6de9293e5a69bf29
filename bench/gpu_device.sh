#!/bin/bash
# The GPU run behind bench/results/gpu_h200.jsonl, for the device machine of the developers'
# guide (JAX and PyTorch there, no TensorFlow or Keras). Before calling it, in the repository root:
#   echo /.whl/ >> .git/info/exclude; echo /.mnist/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
#   mkdir -p .mnist && cp ../shared/data/mnist/*.gz .mnist/
# then run `bash bench/gpu_device.sh` there, carrying .whl and .mnist. Results go to $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD COMPANION_MNIST_DIR=$PWD/.mnist PYTHONUNBUFFERED=1
out=${OUT:-bench/results}
nvidia-smi -L
python3 -c "import keras, jax, torch; print('keras', keras.__version__, 'jax', jax.__version__, 'torch', torch.__version__, jax.devices())"
# The best VAE's importance-weighted bound with k = 5000 on the full test set (issue 4).
timeout 200 python3 -m companion evaluate ar_vae --backend torch --k 5000 --json "$out/ar_vae_k5000.json" 2>&1 \
    | tr '\r' '\n' | grep -v '%|' | tail -40
# Throughput of every model: JAX and PyTorch, batch 256 and 1024, float32 and bf16.
python3 bench/gpu.py --out "$out/gpu.jsonl" --timeout 150 --steps 5 2>&1 | grep -v '^{' | tail -60
