"""A small residual CNN for 28x28 grayscale images (Fashion-MNIST), used by the demo.

`build()` returns it untrained; `trained()` loads the weights shipped in examples/weights/
(trained by `python examples/fashion_cnn.py`, test accuracy recorded beside the weights).
"""

from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).parent / "weights" / "fashion_cnn.pt"


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class FashionCNN(nn.Module):
    def __init__(self, widths=(32, 64, 128), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(Block(cin, w, 1 if i == 0 else 2))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def build() -> nn.Module:
    return FashionCNN()


def trained() -> nn.Module:
    m = FashionCNN()
    m.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return m.eval()


if __name__ == "__main__":  # train the shipped weights: 2 epochs on Fashion-MNIST, CPU
    import json
    import time

    from edgeprune.data import fashion_mnist

    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = fashion_mnist.tensors("train")
    xte, yte = fashion_mnist.tensors("test")
    model = FashionCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    epochs, bs = 2, 128
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=epochs * (len(xtr) // bs))
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(len(xtr) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            xb = xtr[idx]
            flip = torch.rand(len(idx)) < 0.5
            xb[flip] = xb[flip].flip(-1)
            loss = nn.functional.cross_entropy(model(xb), ytr[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000)) / len(xte)
    WEIGHTS.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS)
    info = {"test_accuracy": acc, "epochs": epochs, "train_seconds": round(time.time() - t0, 1), "torch": torch.__version__}
    (WEIGHTS.parent / "fashion_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
