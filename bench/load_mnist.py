"""How long loading MNIST from the IDX files takes, and what the checks cost.

Prints the time of `load_mnist` with checksum verification, relative to the same load
without it, on the same files in the same process (best of several repeats).

    .venv/bin/python bench/load_mnist.py [DATA_DIR]
"""

import sys
import timeit
from pathlib import Path

from companion.data import load_mnist


def best_of(function, repeats=5):
    return min(timeit.repeat(function, number=1, repeat=repeats))


def main():
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/mnist"
    load_mnist(data_dir)  # warm the file cache
    checked = best_of(lambda: load_mnist(data_dir))
    unchecked = best_of(lambda: load_mnist(data_dir, verify_checksums=False))
    print(f"data folder: {data_dir}")
    print(f"load_mnist, checksums verified:  {checked:.3f} s (best of 5)")
    print(f"load_mnist, checksums skipped:   {unchecked:.3f} s (best of 5)")
    print(f"cost of the checksums: x{checked / unchecked:.2f} of the unchecked load")


if __name__ == "__main__":
    main()
