"""Channel gates on a full-width model: soft (trainable) for the regularized method, hard (0/1) masks
for the knapsack's iterative schedule.

Each group's gate multiplies the outputs of its member layers (after their batch-norm when they
have one, so normalization cannot undo it). A zero gate is exactly a removed channel: the next
layer sees zeros, a residual sum gets zeros from every coupled branch; a head whose q, k and v
rows are zero attends uniformly to zero values and adds nothing. So fine-tuning a masked
model and then physically removing the masked channels gives the same function.

Regularized method: gate = sigmoid(logit); the expected width of a group is the sum of its gates,
and the expected latency comes from the predictor's differentiable form:
    loss = task + lam * relu(E[latency] - budget) / budget
"""

from __future__ import annotations

import numpy as np


def _gate_target(dg, module, member):
    """The module whose output carries `member`'s channels post-normalization (its BN, else itself)."""
    import torch.nn as nn

    node = dg.module2node.get(member)
    if node is not None and len(node.outputs) == 1:
        nxt = node.outputs[0].module
        if isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)) and any(nxt is m for m in module.modules()):
            return nxt
    return member


class ChannelGates:
    """Forward hooks that scale each group's channels by a gate vector."""

    def __init__(self, module, dg, groups, soft: bool = False, init_logit: float = 3.0):
        import torch

        self.module, self.groups, self.soft = module, list(groups), soft
        mods = dict(module.named_modules())
        self.logits: dict[str, torch.nn.Parameter] = {}
        self.masks: dict[str, torch.Tensor] = {}
        # a head group has one gate per head, spread over the head's q/k/v rows (a head goes whole)
        self.spread = {g.root: torch.as_tensor(g.head_of_channel()) for g in self.groups if g.head_dim}
        for g in self.groups:
            if soft:
                n = g.channels // g.unit if g.head_dim else g.channels
                self.logits[g.root] = torch.nn.Parameter(torch.full((n,), float(init_logit)))
            else:
                self.masks[g.root] = torch.ones(g.channels)
        self._hooks = []
        for g in self.groups:
            targets = {id(t): t for t in (_gate_target(dg, module, mods[m]) for m in g.members)}
            for t in targets.values():
                self._hooks.append(t.register_forward_hook(self._hook(g.root, t)))

    def _hook(self, root: str, target):
        import torch.nn as nn

        last_dim = isinstance(target, nn.Linear)

        def hook(_mod, _inp, out):
            gate = self.gate(root).to(out.device, out.dtype)
            if last_dim or out.dim() == 2:
                return out * gate
            return out * gate.view(1, -1, *([1] * (out.dim() - 2)))

        return hook

    def gate(self, root: str):
        import torch

        if not self.soft:
            return self.masks[root]
        gate = torch.sigmoid(self.logits[root])
        return gate[self.spread[root]] if root in self.spread else gate

    def parameters(self):
        return list(self.logits.values())

    def set_masks(self, kept_idx: dict[str, np.ndarray]) -> None:
        """Hard masks: 1 for the channels listed per group root, 0 elsewhere."""
        import torch

        for g in self.groups:
            m = torch.zeros(g.channels)
            m[torch.as_tensor(np.asarray(kept_idx.get(g.root, np.arange(g.channels)), dtype=np.int64))] = 1.0
            self.masks[g.root] = m

    def expected_channels(self) -> dict[str, object]:
        """Predictor plan with real-valued widths: each member's width = sum of its group's gates."""
        out = {}
        for g in self.groups:
            s = self.gate(g.root).sum()
            for m in g.members:
                out[m] = s
        return out

    def latency_penalty(self, lm, budget_ms: float, lam: float):
        """lam * relu(E[latency] - budget) / budget, differentiable in the gate logits."""
        import torch

        expected = lm.torch_predict(self.expected_channels())
        self.last_expected_ms = float(expected.detach())
        return (lam * torch.relu(expected - budget_ms) / budget_ms).float()

    def probabilities(self) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            return {g.root: self.gate(g.root).detach().cpu().double().numpy() for g in self.groups}

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
