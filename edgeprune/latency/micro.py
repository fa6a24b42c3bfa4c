"""Micro-models: one kernel rebuilt as a tiny nn.Module at a chosen channel count.

The table builder exports these through the deployment's exporter and times them on the
device, so each table entry is what that runtime does for that kernel at that width.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.models.inputs import InputSpec

_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "silu": nn.SiLU, "gelu": nn.GELU,
         "sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


def _act(name):
    return _ACTS[name]() if name else nn.Identity()


class _Fn(nn.Module):
    """Calls one torch function / tensor method on the inputs, with the recorded constant arguments."""

    def __init__(self, fn: dict, act: str | None = None):
        super().__init__()
        self.fn, self.act = fn, _act(act)

    def forward(self, *xs):
        f, name = self.fn, self.fn["name"]
        if name == "cat":
            y = torch.cat(list(xs), dim=f["dim"])
        elif name in ("add", "mul", "sub", "truediv", "div"):
            a, b = xs
            y = {"add": torch.add, "mul": torch.mul, "sub": torch.sub}.get(name, torch.div)(a, b)
        elif f.get("method"):
            y = getattr(xs[0], name)(*f["args"], **f["kwargs"])
        else:
            fn = getattr(torch, name, None) or getattr(torch.nn.functional, name)
            y = fn(xs[0], *f["args"], **f["kwargs"])
        if isinstance(y, (list, tuple)):
            y = y[0]
        return self.act(y)


def _module(recipe: dict, c: int) -> nn.Module:
    kind = recipe["type"]
    if kind in ("MaxPool2d", "AvgPool2d"):
        return getattr(nn, kind)(recipe["kernel_size"], recipe["stride"], recipe["padding"],
                                 ceil_mode=recipe["ceil_mode"])
    if kind in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return getattr(nn, kind)(recipe["output_size"])
    if kind in ("BatchNorm2d", "BatchNorm1d"):
        m = getattr(nn, kind)(c)
        with torch.no_grad():  # non-trivial statistics so nothing folds away
            m.running_var.uniform_(0.5, 1.5)
            m.running_mean.normal_()
        return m
    if kind == "GroupNorm":
        return nn.GroupNorm(recipe["num_groups"], c)
    if kind in _ACTS_BY_MODULE:
        return _ACTS_BY_MODULE[kind]()
    raise KeyError(kind)


_ACTS_BY_MODULE = {"ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "Hardswish": nn.Hardswish, "SiLU": nn.SiLU, "GELU": nn.GELU,
                   "Sigmoid": nn.Sigmoid, "Hardsigmoid": nn.Hardsigmoid, "Tanh": nn.Tanh, "LeakyReLU": nn.LeakyReLU}


class _LayerNormLast(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c)

    def forward(self, x):
        return self.ln(x)


def build_micro(spec: dict, cin: int, cout: int) -> tuple[nn.Module, tuple[InputSpec, ...]]:
    """The kernel `spec` as a standalone module at (cin, cout) channels, with its input specs."""
    op = spec["op"]
    torch.manual_seed(0)
    if op in ("conv", "dwconv", "gconv"):
        h, w = spec["hw"]
        if op == "conv":
            groups, ci, co = 1, cin, cout
        elif op == "dwconv":
            groups, ci, co = cin, cin, cin
        else:
            gw = spec["group_width"]
            ci = max(gw, (cin // gw) * gw)
            groups, co = ci // gw, int(round(ci * spec["out_per_in"]))
        pad = spec["padding"] if isinstance(spec["padding"], str) else tuple(spec["padding"])
        layers = [nn.Conv2d(ci, co, tuple(spec["kernel"]), tuple(spec["stride"]), pad, tuple(spec["dilation"]),
                            groups=groups, bias=spec["bias"])]
        layers.append(_act(spec.get("act")))
        return nn.Sequential(*layers).eval(), (InputSpec((spec.get("batch", 1), ci, h, w)),)
    if op == "linear":
        m = nn.Sequential(nn.Linear(cin, cout, bias=spec["bias"]), _act(spec.get("act"))).eval()
        return m, (InputSpec(tuple(spec["lead"]) + (cin,)),)
    if op == "module" and spec.get("fixed"):
        raise KeyError("fixed module kernels are measured from the model itself")
    # one-width kernels: every input's channel dim is its share of c
    c = cin
    specs = []
    for shape, ratio in zip(spec["shapes"], spec["ratios"]):
        specs.append(InputSpec(tuple(max(1, int(round(c * ratio))) if d == "C" else d for d in shape)))
    if "module" in spec:
        kind = spec["module"]["type"]
        if kind == "HeadAttention":  # whole heads: the packed q/k/v input is 3 x heads x head_dim wide
            from edgeprune.models.attention import HeadAttention

            d = int(spec["module"]["head_dim"])
            heads = max(1, int(round(c / d)))
            shape = tuple(3 * heads * d if x == "C" else x for x in spec["shapes"][0])
            return HeadAttention(heads, d).eval(), (InputSpec(shape),)
        if kind == "LayerNorm":
            return _LayerNormLast(c).eval(), tuple(specs)
        m = _module(spec["module"], c)
        return m.eval(), tuple(specs)
    if "fn" in spec:
        if spec["fn"]["name"] == "layer_norm":
            return _LayerNormLast(c).eval(), tuple(specs)
        return _Fn(spec["fn"], spec.get("act")).eval(), tuple(specs)
    if op == "act":
        return _act(spec["act"]).eval(), tuple(specs)
    raise KeyError(op)
