#!/usr/bin/python3
"""bench_step's Python peer: the same training step in PyTorch, one thread.

Builds the zoo's mlp (784-300-100-10) or lenet5 (conv 6 and 16 of 5x5, pad 2
for 28x28 inputs, max pools, 120-84-10) as packtrain does, and times
zero_grad, forward, cross-entropy, backward and the optimizer step on a
random batch of Fashion-MNIST's shape. Prints the median milliseconds per
step on one line.

Usage: step_peer.py --model mlp|lenet5 --batch B --seconds S --optimizer adam|sgd
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "lenet5"], required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(7)
    model = Mlp() if args.model == "mlp" else LeNet5()
    model.train()
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    images = torch.rand(args.batch, 1, 28, 28)
    labels = torch.randint(0, 10, (args.batch,))

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()

    for _ in range(3):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < args.seconds:
        t = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - t))
    print(f"{statistics.median(times):.4f}")


if __name__ == "__main__":
    main()
