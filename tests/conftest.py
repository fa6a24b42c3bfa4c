"""Shared fixtures: tiny real models (files on disk, so specs resolve as a user's would)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("EDGEPRUNE_QUIET", "1")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A user model file with a factory, as `file.py:factory` specs expect."""
    d = tmp_path_factory.mktemp("usermodels")
    f = d / "tiny.py"
    f.write_text(textwrap.dedent('''
        import torch
        from torch import nn

        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3, padding=1)
                self.bn = nn.BatchNorm2d(8)
                self.fc = nn.Linear(8, 4)

            def forward(self, x):
                x = torch.relu(self.bn(self.conv(x)))
                return self.fc(x.mean((2, 3)))

        def build():
            torch.manual_seed(0)
            return Tiny()

        def needs_args(width):
            return Tiny()

        def not_a_module():
            return 42

        def explodes():
            raise ValueError("boom")
    '''))
    return f
