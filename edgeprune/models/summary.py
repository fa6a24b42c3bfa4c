"""Parameter and MAC counts per layer (MACs from torch's FlopCounterMode: flops / 2)."""

from __future__ import annotations

from edgeprune.models.inputs import InputSpec, example_inputs


def summarize_model(module, specs: tuple[InputSpec, ...]) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    leaves = {name: m for name, m in module.named_modules() if name and not list(m.children())}
    shapes: dict[str, str] = {}
    hooks = []
    for name, m in leaves.items():
        def hook(mod, args, out, name=name):
            o = out[0] if isinstance(out, (tuple, list)) and out else out
            shapes[name] = "x".join(map(str, o.shape)) if isinstance(o, torch.Tensor) else type(o).__name__
        hooks.append(m.register_forward_hook(hook))
    counter = FlopCounterMode(display=False, depth=None)
    try:
        with torch.no_grad(), counter:
            module(*example_inputs(specs))
    finally:
        for h in hooks:
            h.remove()
    flops_by_module = counter.get_flop_counts()
    layers = []
    for name, m in leaves.items():
        flops = 0
        for key in (f"{type(module).__name__}.{name}", name):
            if key in flops_by_module:
                flops = sum(flops_by_module[key].values())
                break
        layers.append({
            "name": name,
            "type": type(m).__name__,
            "params": sum(p.numel() for p in m.parameters(recurse=False)),
            "macs": int(flops // 2),
            "output_shape": shapes.get(name, "-"),
        })
    total_flops = sum(flops_by_module.get("Global", {}).values())
    return {
        "params": sum(p.numel() for p in module.parameters()),
        "macs": int(total_flops // 2),
        "layers": layers,
    }
