#!/usr/bin/python3
"""A model defined in PyTorch and a dataset as NumPy arrays, for packtrain.

    /usr/bin/python3 examples/python_model/make_model_and_arrays.py [OUT] [--limit N]
    packtrain kfold --models OUT/net.pt,mlp --data OUT/arrays --out runs/py

Writes OUT/net.pt (LeNet-300-100, scripted with torch.jit.script) and
OUT/arrays/{x,y}_{train,test}.npy (Fashion-MNIST from Debian's
dataset-fashion-mnist). Needs Debian's python3-torch: the same 1.13 build as
the libtorch-dev packtrain links, so packtrain loads the file it saves.
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATASET = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


class Net(nn.Module):
    """LeNet-300-100: 784 -> 300 -> 100 -> 10, ReLU. forward takes one tensor
    (N x 1 x 28 x 28) and returns N x 10 logits: what packtrain asks of a model."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def read_idx(name, header_bytes):
    """An IDX file's payload as uint8: images after a 16-byte header, labels after 8."""
    with gzip.open(os.path.join(DATASET, name)) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header_bytes)


def main():
    parser = argparse.ArgumentParser(
        description="Save a PyTorch model as TorchScript (OUT/net.pt) and Fashion-MNIST "
        "as NumPy arrays (OUT/arrays/x_train.npy, y_train.npy, x_test.npy, y_test.npy) "
        "for `packtrain kfold --models OUT/net.pt --data OUT/arrays`.")
    parser.add_argument("out", nargs="?", default="python_model",
                        help="output folder (default: ./python_model)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="write only the first N training samples (default: all 60,000)")
    args = parser.parse_args()
    if not os.path.isdir(DATASET):
        print(f"make_model_and_arrays: {DATASET} not found (apt-get install dataset-fashion-mnist)", file=sys.stderr)
        sys.exit(2)
    if args.limit < 0:
        parser.error("--limit must be 0 (all) or more")

    # The model: scripted, so packtrain's LibTorch runs it without Python.
    torch.manual_seed(0)
    os.makedirs(os.path.join(args.out, "arrays"), exist_ok=True)
    torch.jit.script(Net()).save(os.path.join(args.out, "net.pt"))

    # The data: uint8 images N x 28 x 28 and integer labels (packtrain scales to [0, 1]).
    x_train = read_idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y_train = read_idx("train-labels-idx1-ubyte.gz", 8)
    x_test = read_idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    y_test = read_idx("t10k-labels-idx1-ubyte.gz", 8)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    for name, array in [("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)]:
        np.save(os.path.join(args.out, "arrays", name + ".npy"), array)

    print(f"wrote {args.out}/net.pt and {args.out}/arrays ({len(x_train)} training, {len(x_test)} test images); now run:")
    print(f"  packtrain kfold --models {args.out}/net.pt,mlp --data {args.out}/arrays --folds 3 --epochs 2 --out runs/python_model")


if __name__ == "__main__":
    main()
