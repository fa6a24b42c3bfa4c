"""Kernel extraction: the list of kernels a runtime executes for a model, with symbolic channel counts.

The model is traced with torch.fx and its tensors are followed through the graph. Runtimes fuse
conv + batch-norm + activation and linear + activation into one kernel, so those become one
`Kernel`. Every conv/linear whose output width pruning may change gets a channel *symbol*; the
channel count of each kernel's input and output is an affine expression of those symbols, so a
pruned configuration (per-layer counts) gives every kernel's (cin, cout) without building the
model. Residual adds couple their producers (one group, one width); depthwise and grouped convs
follow their producer; concat sums; flatten multiplies by the spatial size. Channels that reach
the model's outputs, attention modules, or anything the tracer cannot follow are fixed.

    >>> graph = extract_kernels(model, specs)             # doctest: +SKIP
    >>> [k.op for k in graph.kernels][:3]                  # doctest: +SKIP
    ['conv', 'pool', 'conv']
"""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import dataclass, field
from typing import Any, Sequence

from edgeprune.errors import TableError

# activation modules / functions a preceding conv, linear or add absorbs (name -> canonical)
_ACT_MODULES = {"ReLU": "relu", "ReLU6": "relu6", "Hardswish": "hardswish", "SiLU": "silu", "GELU": "gelu",
                "Sigmoid": "sigmoid", "Hardsigmoid": "hardsigmoid", "LeakyReLU": "leaky_relu", "Tanh": "tanh"}
_ACT_FUNCS = {"relu", "relu_", "relu6", "hardswish", "silu", "gelu", "sigmoid", "hardsigmoid", "tanh", "leaky_relu"}
_PASS_MODULES = {"Dropout", "Identity", "Dropout2d", "StochasticDepth"}
_POOL_MODULES = {"MaxPool2d": "maxpool", "AvgPool2d": "avgpool", "AdaptiveAvgPool2d": "gap",
                 "AdaptiveMaxPool2d": "gap"}
_NORM_MODULES = {"BatchNorm2d": "bn", "BatchNorm1d": "bn", "LayerNorm": "layernorm", "GroupNorm": "groupnorm"}
# functions / methods that only change a view (no kernel of their own on the runtimes we target)
_VIEW_OPS = {"view", "reshape", "flatten", "unflatten", "contiguous", "expand", "squeeze", "unsqueeze", "size", "dim",
             "getattr", "getitem", "_assert", "type_as", "to", "clone", "dropout", "identity",
             "stochastic_depth"}
_ELEMENTWISE = {"add": "add", "add_": "add", "iadd": "add", "sub": "add", "mul": "mul", "mul_": "mul", "imul": "mul",
                "truediv": "mul", "div": "mul"}
_MEMORY_OPS = {"cat": "cat", "permute": "transpose", "transpose": "transpose", "mean": "gap",
               "adaptive_avg_pool2d": "gap", "max_pool2d": "maxpool", "avg_pool2d": "avgpool",
               "interpolate": "resize", "pixel_shuffle": "shuffle", "softmax": "softmax", "layer_norm": "layernorm",
               "chunk": "split", "split": "split", "channel_shuffle": "transpose"}
_SHAPE_QUERIES = {"size", "dim", "getattr", "numel"}
# reductions: over the channel dim they cost what the input's width costs but leave no width behind
_REDUCTIONS = {"mean", "sum", "amax", "amin", "var", "std", "norm", "logsumexp"}


# ---------------------------------------------------------------- affine channel expressions
@dataclass(frozen=True)
class Lin:
    """const + sum(coeff * symbol): the size of one tensor dimension as a function of the pruning plan."""

    terms: tuple[tuple[int, float], ...] = ()
    const: float = 0.0

    @staticmethod
    def of(sym: int) -> "Lin":
        return Lin(((sym, 1.0),), 0.0)

    @staticmethod
    def constant(v: float) -> "Lin":
        return Lin((), float(v))

    def scale(self, f: float) -> "Lin":
        return Lin(tuple((s, c * f) for s, c in self.terms), self.const * f)

    def plus(self, other: "Lin") -> "Lin":
        d: dict[int, float] = dict(self.terms)
        for s, c in other.terms:
            d[s] = d.get(s, 0.0) + c
        return Lin(tuple(sorted(d.items())), self.const + other.const)

    def symbols(self) -> list[int]:
        return [s for s, _ in self.terms]

    def to_json(self) -> dict:
        return {"terms": [[s, c] for s, c in self.terms], "const": self.const}


@dataclass
class Kernel:
    """One kernel as the runtime runs it (fused group), with symbolic in/out channel counts.

    `spec` is everything about the kernel that pruning does not change (op, spatial sizes, kernel,
    stride, ..., how to rebuild it as a micro-model); `cin`/`cout` are its current channel counts
    and `cin_expr`/`cout_expr` how they follow a pruning plan. `dims` is 2 for conv/linear
    (latency depends on cin and cout), 1 for kernels whose cost follows one width.
    """

    name: str
    op: str
    spec: dict
    cin: int
    cout: int
    cin_expr: Lin
    cout_expr: Lin
    dims: int
    modules: tuple[str, ...] = ()

    def family_key(self) -> str:
        # concat shares may shift under pruning; its cost follows the total width, so they are not part of the key
        return json.dumps({k: v for k, v in self.spec.items() if k != "ratios"}, sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        s = self.spec
        extra = f" k{s['kernel']} s{s['stride']}" if "kernel" in s else ""
        return f"{self.name} ({self.op}{extra}, {self.cin}->{self.cout} ch, input {s.get('hw', s.get('shape'))})"


@dataclass
class KernelGraph:
    """Kernels in execution order plus the channel symbols pruning can change."""

    kernels: list[Kernel]
    symbols: list[str]                 # symbol id -> module qualified name
    sym_values: list[int]              # current out-channel count per symbol
    group_of: list[int]                # symbol id -> group id (coupled symbols share one width)
    fixed_groups: set[int]
    followers: dict[str, str] = field(default_factory=dict)  # depthwise/grouped conv name -> why it follows
    structure_key: str = ""
    notes: list[str] = field(default_factory=list)  # ops left out of the kernel list (cost goes to the overhead)

    def prunable(self) -> dict[str, int]:
        return {n: v for i, (n, v) in enumerate(zip(self.symbols, self.sym_values))
                if self.group_of[i] not in self.fixed_groups}


# ---------------------------------------------------------------- tracing
class _Info:
    """What we know about one traced tensor: shape, channel dim, channel expression."""

    __slots__ = ("shape", "cdim", "lin")

    def __init__(self, shape, cdim, lin):
        self.shape, self.cdim, self.lin = tuple(shape), cdim, lin

    @property
    def channels(self) -> int:
        return self.shape[self.cdim]


def extract_kernels(module, input_specs: Sequence) -> KernelGraph:
    """Trace `module` on `input_specs` and return its kernels and channel symbols."""
    import torch
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    from edgeprune.models.inputs import example_inputs

    module = module.eval()
    try:
        gm = fx.GraphModule(module, _leaf_tracer().trace(module))
    except Exception as e:
        raise TableError(f"cannot trace {type(module).__name__} with torch.fx ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:160]}); latency tables need a traceable model "
                         "(no data-dependent Python control flow in forward)") from None
    inputs = example_inputs(tuple(input_specs))
    with torch.no_grad():
        ShapeProp(gm).propagate(*inputs)
    return _Extractor(gm, module).run()


def _leaf_tracer():
    """torch.fx's tracer with the attention core kept whole: the tables price it as one kernel."""
    import torch.fx as fx

    from edgeprune.models.attention import HeadAttention

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, HeadAttention) or super().is_leaf_module(m, qualname)

    return Tracer()


def _shape(node):
    tm = node.meta.get("tensor_meta")
    if tm is None or not hasattr(tm, "shape"):
        return None
    return tuple(int(d) for d in tm.shape)


def _target_name(node) -> str:
    t = node.target
    if node.op == "call_method":
        return str(t)
    if t in (operator.add, operator.iadd):
        return "add"
    if t in (operator.mul, operator.imul):
        return "mul"
    if t is operator.sub:
        return "sub"
    if t is operator.truediv:
        return "truediv"
    if t is operator.getitem:
        return "getitem"
    return getattr(t, "__name__", str(t))


class _Extractor:
    def __init__(self, gm, root):
        self.gm = gm
        self.mods = dict(gm.named_modules())
        self.info: dict[Any, Any] = {}
        self.symbols: list[str] = []
        self.sym_values: list[int] = []
        self.parent: list[int] = []
        self.fixed: set[int] = set()
        self.kernels: list[Kernel] = []
        self.absorbed: set = set()
        self.followers: dict[str, str] = {}
        self.notes: list[str] = []
        self.params: set = set()  # parameters used as tensors (class tokens, position embeddings) and views of them

    # union-find over symbols
    def _find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def _union(self, a: Lin, b: Lin) -> None:
        syms = a.symbols() + b.symbols()
        if (not a.terms) or (not b.terms) or len(a.terms) > 1 or len(b.terms) > 1:
            # coupled to a constant width or to a sum (concat): nothing in it can be pruned alone
            for s in syms:
                self.fixed.add(self._find(s))
            return
        ra, rb = self._find(syms[0]), self._find(syms[1])
        if ra != rb:
            lo, hi = min(ra, rb), max(ra, rb)
            self.parent[hi] = lo
            if hi in self.fixed:
                self.fixed.add(lo)

    def _fix(self, lin: Lin | None) -> None:
        if lin is not None:
            for s in lin.symbols():
                self.fixed.add(self._find(s))

    def _new_symbol(self, name: str, value: int) -> Lin:
        self.symbols.append(name)
        self.sym_values.append(value)
        self.parent.append(len(self.parent))
        return Lin.of(len(self.symbols) - 1)

    def _tensor_args(self, node) -> list:
        import torch.fx as fx

        out = []
        for a in list(node.args) + list(node.kwargs.values()):
            if isinstance(a, fx.Node) and isinstance(self.info.get(a), _Info):
                out.append(a)
            elif isinstance(a, (list, tuple)):
                out += [x for x in a if isinstance(x, fx.Node) and isinstance(self.info.get(x), _Info)]
        return out

    def _sole_user(self, node, accept) -> Any:
        users = list(node.users)
        if len(users) == 1 and accept(users[0]):
            return users[0]
        return None

    def _act_of(self, node) -> str | None:
        if node.op == "call_module":
            return _ACT_MODULES.get(type(self.mods[node.target]).__name__)
        if node.op in ("call_function", "call_method"):
            n = _target_name(node).rstrip("_") if _target_name(node) != "relu_" else "relu"
            return n if n in _ACT_FUNCS else None
        return None

    def run(self) -> KernelGraph:
        for node in self.gm.graph.nodes:
            try:
                self._visit(node)
            except TableError:
                raise
            except Exception as e:  # an op we do not model: keep its channels fixed, cost goes to the overhead
                self._fix_inputs(node)
                self.info[node] = self._plain(node)
                self.notes.append(f"{node.name}: {type(e).__name__}: {str(e)[:120]}")
        groups = [self._find(i) for i in range(len(self.symbols))]
        fixed = {self._find(s) for s in self.fixed}
        struct = hashlib.sha256(json.dumps(
            [[k.name, k.op, {kk: v for kk, v in k.spec.items() if kk != "ratios"}]
             for k in self.kernels], sort_keys=True, default=str).encode()).hexdigest()[:16]
        return KernelGraph(self.kernels, self.symbols, self.sym_values, groups, fixed, self.followers, struct,
                           self.notes)

    def _plain(self, node):
        shp = _shape(node)
        if shp is None or len(shp) == 0:
            return None
        cdim = 1 if len(shp) >= 2 else 0
        return _Info(shp, cdim, Lin.constant(shp[cdim]))

    def _fix_inputs(self, node) -> None:
        for a in self._tensor_args(node):
            self._fix(self.info[a].lin)

    def _track(self, src: _Info, out_shape) -> _Info | None:
        """Where the channel dim of `src` went in a reshaped/permuted/reduced output."""
        if out_shape is None or len(out_shape) == 0:
            return None
        c = src.channels
        nd = len(out_shape)
        cand = range(1, nd) if nd > 1 else range(nd)
        if src.cdim < nd and out_shape[src.cdim] == c and src.cdim in cand:
            return _Info(out_shape, src.cdim, src.lin)
        for j in reversed(list(cand)):
            if out_shape[j] == c:
                return _Info(out_shape, j, src.lin)
        for j in cand:
            if out_shape[j] > c and out_shape[j] % c == 0:
                return _Info(out_shape, j, src.lin.scale(out_shape[j] / c))
        best = max((j for j in cand if out_shape[j] > 1 and c % out_shape[j] == 0), key=lambda j: out_shape[j],
                   default=None)
        if best is not None:
            return _Info(out_shape, best, src.lin.scale(out_shape[best] / c))
        return None

    # ------------------------------------------------------------ per node
    def _visit(self, node) -> None:
        import torch.fx as fx

        if node in self.absorbed:
            return
        if node.op == "placeholder":
            self.info[node] = self._plain(node)
            return
        if node.op == "get_attr":
            self.info[node] = self._plain(node)
            self.params.add(node)
            return
        if node.op == "output":
            def fix_all(a):
                if isinstance(a, fx.Node) and isinstance(self.info.get(a), _Info):
                    self._fix(self.info[a].lin)
                elif isinstance(a, (list, tuple)):
                    for x in a:
                        fix_all(x)
                elif isinstance(a, dict):
                    for x in a.values():
                        fix_all(x)
            fix_all(node.args[0])
            return
        if node.op == "call_module":
            self._visit_module(node)
            return
        self._visit_function(node)

    def _visit_module(self, node) -> None:
        import torch.nn as nn

        mod = self.mods[node.target]
        kind = type(mod).__name__
        args = self._tensor_args(node)
        src = self.info.get(args[0]) if args else None
        out_shape = _shape(node)
        from edgeprune.models.attention import HeadAttention

        if isinstance(mod, nn.Conv2d) and src is not None:
            self._conv(node, mod, src, out_shape)
        elif isinstance(mod, HeadAttention) and src is not None and out_shape is not None:
            self._attention(node, mod, src, out_shape)
        elif isinstance(mod, nn.Linear) and src is not None:
            self._linear(node, mod, src, out_shape)
        elif kind in _ACT_MODULES and src is not None:
            self.info[node] = _Info(out_shape, src.cdim, src.lin)
            self._memory_kernel(node, "act", src, extra={"act": _ACT_MODULES[kind]}, module=mod)
        elif kind in _PASS_MODULES and src is not None:
            self.info[node] = _Info(out_shape, src.cdim, src.lin)
        elif kind == "Flatten" and src is not None:
            self.info[node] = self._track(src, out_shape) or self._lost(src, node)
        elif (kind in _POOL_MODULES or kind in _NORM_MODULES) and src is not None:
            tracked = self._track(src, out_shape) or self._lost(src, node)
            self.info[node] = tracked
            self._memory_kernel(node, _POOL_MODULES.get(kind) or _NORM_MODULES[kind], src, module=mod)
        else:
            # opaque module (attention, custom blocks): fixed widths, measured as it is
            for a in args:
                self._fix(self.info[a].lin)
            self.info[node] = self._opaque_outputs(node, src)
            self._opaque_kernel(node, mod, args)

    def _opaque_outputs(self, node, src: _Info | None):
        """Fixed-width infos for an opaque module's output(s). One shaped like its input (tokens x channels)
        has its channels where the input's were, so a residual add with it couples (and fixes) the right width."""
        def one(meta):
            shp = tuple(int(d) for d in meta.shape) if hasattr(meta, "shape") else None
            if not shp:
                return None
            cdim = src.cdim if src is not None and src.shape == shp else (1 if len(shp) >= 2 else 0)
            return _Info(shp, cdim, Lin.constant(shp[cdim]))
        tm = node.meta.get("tensor_meta")
        if isinstance(tm, (list, tuple)) and not hasattr(tm, "shape"):
            return [one(t) for t in tm]  # (output, attention weights) of nn.MultiheadAttention
        return one(tm) if tm is not None else None

    def _lost(self, src: _Info, node):
        self._fix(src.lin)
        return self._plain(node)

    def _absorb_chain(self, node, allow_bn: bool) -> tuple[Any, str | None, bool]:
        """Follow conv/linear -> [bn] -> [act]; return (last node, act name, has_bn)."""
        import torch.nn as nn

        last, act, bn = node, None, False
        if allow_bn:
            nxt = self._sole_user(last, lambda u: u.op == "call_module"
                                  and isinstance(self.mods[u.target], nn.BatchNorm2d))
            if nxt is not None:
                self.absorbed.add(nxt)
                last, bn = nxt, True
        nxt = self._sole_user(last, lambda u: self._act_of(u) is not None)
        if nxt is not None:
            self.absorbed.add(nxt)
            act = self._act_of(nxt)
            last = nxt
        return last, act, bn

    def _conv(self, node, mod, src: _Info, out_shape) -> None:
        cin, cout, groups = mod.in_channels, mod.out_channels, mod.groups
        last, act, bn = self._absorb_chain(node, allow_bn=True)
        h, w = src.shape[2], src.shape[3]
        spec = {"op": "conv", "hw": [h, w], "kernel": list(mod.kernel_size), "stride": list(mod.stride),
                "padding": list(mod.padding) if not isinstance(mod.padding, str) else mod.padding,
                "dilation": list(mod.dilation), "bias": mod.bias is not None or bn, "act": act}
        if src.shape[0] != 1:  # frames folded into the batch (video decoders): cost scales with it
            spec["batch"] = int(src.shape[0])
        if groups == 1:
            out_lin = self._new_symbol(node.target, cout)
            op, dims = "conv", 2
        elif groups == cin == cout:
            out_lin, op, dims = src.lin, "dwconv", 1
            self.followers[node.target] = "depthwise"
            # also give it a (coupled) symbol so plans from pruned models may name it
            sym = self._new_symbol(node.target, cout)
            self._union(sym, src.lin)
        else:
            # grouped conv: pruning tools do not keep its group structure, so its widths stay fixed
            self._fix(src.lin)
            out_lin, op, dims = Lin.constant(cout), "gconv", 1
            spec["group_width"] = cin // groups
            spec["out_per_in"] = cout / cin
        spec["op"] = op
        k = Kernel(node.target, op, spec, cin, cout, src.lin, out_lin, dims, (node.target,))
        self.kernels.append(k)
        res = _Info(_shape(last) or out_shape, 1, out_lin)
        self.info[node] = res
        for n in self.absorbed:
            if n not in self.info:
                self.info[n] = res
        self._alias(node, last, res)

    def _alias(self, first, last, res) -> None:
        n = first
        while n is not last:
            self.info[n] = res
            n = next(iter(n.users))
        self.info[last] = res

    def _linear(self, node, mod, src: _Info, out_shape) -> None:
        last, act, _ = self._absorb_chain(node, allow_bn=False)
        if src.cdim != len(src.shape) - 1:
            self._fix(src.lin)
        rows = 1
        for d in src.shape[:-1]:
            rows *= d
        out_lin = self._new_symbol(node.target, mod.out_features)
        spec = {"op": "linear", "rows": rows, "bias": mod.bias is not None, "act": act,
                "lead": list(src.shape[:-1])}
        self.kernels.append(Kernel(node.target, "linear", spec, mod.in_features, mod.out_features, src.lin, out_lin,
                                   2, (node.target,)))
        res = _Info(_shape(last) or out_shape, len(out_shape) - 1, out_lin)
        self._alias(node, last, res)

    def _attention(self, node, mod, src: _Info, out_shape) -> None:
        """Packed q/k/v (3 x heads x head_dim wide) in, heads x head_dim out: its width is a third of its input's."""
        if src.cdim != len(src.shape) - 1:
            self._fix(src.lin)
        self.info[node] = _Info(out_shape, len(out_shape) - 1, src.lin.scale(1.0 / 3.0))
        self._memory_kernel(node, "attention", src, module=mod)

    def _memory_kernel(self, node, op: str, src: _Info, extra: dict | None = None, module=None,
                       inputs: list | None = None, fn: dict | None = None) -> None:
        """A kernel whose cost follows one channel width (pool, norm, elementwise, concat...)."""
        out = self.info.get(node)
        if not isinstance(out, _Info):
            return
        inputs = inputs or [src]
        c = out.channels
        spec = {"op": op, "shapes": [list(i.shape) for i in inputs], "cdims": [i.cdim for i in inputs],
                "ratios": [i.channels / c if c else 1.0 for i in inputs]}
        if module is not None:
            spec["module"] = _module_recipe(module)
        if fn is not None:
            spec["fn"] = fn
        if extra:
            spec.update(extra)
        # spatial context without the channel dim (so one entry serves every width); inputs of a
        # constant width (a broadcast statistic, a fixed tensor) keep their literal shape
        spec["shapes"] = [[d if j != i.cdim or not (i.lin.terms or i.channels == c) else "C"
                           for j, d in enumerate(i.shape)] for i in inputs]
        self.kernels.append(Kernel(node.name if module is None else node.target, op, spec, c, c, out.lin, out.lin,
                                   1))

    def _opaque_kernel(self, node, mod, args) -> None:
        shapes = [list(self.info[a].shape) for a in args]
        if not shapes:
            return
        recipe = _module_recipe(mod)
        spec = {"op": "module", "shapes": shapes, "module": recipe, "fixed": True}
        self.kernels.append(Kernel(node.target, "module", spec, 0, 0, Lin.constant(0), Lin.constant(0), 0,
                                   (node.target,)))

    def _visit_function(self, node) -> None:
        import torch.fx as fx

        name = _target_name(node)
        args = self._tensor_args(node)
        out_shape = _shape(node)
        tm = node.meta.get("tensor_meta")
        if name == "getitem":
            parent = node.args[0]
            pinfo = self.info.get(parent)
            if isinstance(pinfo, list):
                self.info[node] = pinfo[node.args[1]]
            elif isinstance(pinfo, _Info) and out_shape is not None:
                self.info[node] = self._track(pinfo, out_shape) or self._lost(pinfo, node)
            else:
                self.info[node] = self._plain(node) if out_shape is not None else None
            return
        if not args:
            self.info[node] = self._plain(node) if out_shape is not None else None
            return
        src = self.info[args[0]]
        if name in ("chunk", "split") and tm is not None and not hasattr(tm, "shape"):
            dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
            dim = dim % len(src.shape)
            parts = []
            for t in tm:
                shp = tuple(int(d) for d in t.shape)
                if dim == src.cdim:
                    parts.append(_Info(shp, src.cdim, src.lin.scale(shp[dim] / src.channels)))
                else:
                    parts.append(_Info(shp, src.cdim, src.lin))
            self.info[node] = parts
            return
        if name in _SHAPE_QUERIES and (tm is None or not hasattr(tm, "shape")):
            self.info[node] = None  # x.shape, x.size(0), x.dim(): reads the shape, leaves the width free
            return
        if (tm is not None and not hasattr(tm, "shape")) or out_shape is None:
            for a in args:
                self._fix(self.info[a].lin)
            self.info[node] = None
            return
        if name in _ELEMENTWISE:
            full = [a for a in args if self.info[a].shape == out_shape]
            base = self.info[full[0]] if full else src
            res = _Info(out_shape, base.cdim, base.lin)
            for a in args:
                i = self.info[a]
                if a is (full[0] if full else args[0]):
                    continue
                if i.cdim < len(i.shape) and len(i.shape) == len(out_shape) and i.shape[i.cdim] == base.channels \
                        and i.shape[base.cdim] == base.channels and a not in self.params:
                    self._union(base.lin, i.lin)
            self.info[node] = res
            if len(args) >= 2 and all(a not in self.params for a in args):
                ins = [self.info[a] for a in args]
                self._absorb_into(node, _ELEMENTWISE[name], ins, name)
            return
        if name in _ACT_FUNCS or name.rstrip("_") in _ACT_FUNCS:
            self.info[node] = _Info(out_shape, src.cdim, src.lin)
            self._memory_kernel(node, "act", src, extra={"act": name.rstrip("_")})
            return
        if name == "cat":
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            nodes = [t for t in tensors if isinstance(t, fx.Node)]
            infos = [self.info[t] for t in nodes]
            dim = dim % len(out_shape)
            own = [self.info[t] for t in nodes if t not in self.params]
            if own and len(own) < len(infos) and all(i.cdim != dim for i in own):
                # tokens joined with a parameter (a class token) along another dim: the parameter is pruned with
                # them (torch-pruning prunes its last dim), so the width is theirs, if it lines up with it
                base = own[0]
                for i in own[1:]:
                    self._union(base.lin, i.lin)
                if any(self.info[t].shape[base.cdim] != base.channels for t in nodes if t in self.params) \
                        or base.cdim != len(out_shape) - 1:
                    self._fix(base.lin)
                self.info[node] = _Info(out_shape, base.cdim, base.lin)
                joined = [self.info[t] if t not in self.params else _Info(self.info[t].shape, base.cdim, base.lin)
                          for t in nodes]
                self._memory_kernel(node, "cat", base, inputs=joined, fn={"name": "cat", "dim": dim})
                return
            if all(i.cdim == dim for i in infos):
                lin = Lin()
                for i in infos:
                    lin = lin.plus(i.lin)
                self.info[node] = _Info(out_shape, dim, lin)
                self._memory_kernel(node, "cat", infos[0], inputs=infos, fn={"name": "cat", "dim": dim})
            else:
                for i in infos[1:]:
                    self._union(infos[0].lin, i.lin)
                self.info[node] = _Info(out_shape, infos[0].cdim, infos[0].lin)
            return
        if name in _REDUCTIONS and src.cdim in _reduced_dims(node, len(src.shape)):
            # e.g. an RMSNorm statistic: x.pow(2).mean(1, keepdim=True); the output's width is constant
            self.info[node] = self._plain(node)
            fn = _fn_recipe(node, name)
            if fn is not None:
                spec = {"op": "reduce", "shapes": [[d if j != src.cdim else "C" for j, d in enumerate(src.shape)]],
                        "cdims": [src.cdim], "ratios": [1.0], "fn": fn}
                self.kernels.append(Kernel(node.name, "reduce", spec, src.channels, src.channels, src.lin, src.lin, 1))
            return
        tracked = _moved(node, name, src, out_shape) or self._track(src, out_shape)
        if tracked is None:
            self._fix(src.lin)
            tracked = self._plain(node)
        elif name in ("reshape", "view") and _literal_size(node, tracked.cdim, len(out_shape)):
            self._fix(src.lin)  # the width is written into the code (x.view(-1, 400)): pruning it breaks the call
        for a in args[1:]:
            self._fix(self.info[a].lin)
        self.info[node] = tracked
        if name in _VIEW_OPS:
            if args[0] in self.params:
                self.params.add(node)
            return
        op = _MEMORY_OPS.get(name, "other")
        fn = _fn_recipe(node, name)
        if fn is None:
            return  # not rebuildable: its (small) cost is left to the calibrated overhead
        self._memory_kernel(node, op, src, fn=fn)

    def _absorb_into(self, node, op: str, ins: list, name: str) -> None:
        act = None
        nxt = self._sole_user(node, lambda u: self._act_of(u) is not None)
        if nxt is not None:
            act = self._act_of(nxt)
            self.absorbed.add(nxt)
            self.info[nxt] = self.info[node]
        fn = {"name": {"add": "add", "mul": "mul"}[op] if name not in ("sub", "truediv", "div") else name}
        self._memory_kernel(node, op, ins[0], inputs=ins, extra={"act": act}, fn=fn)


def _moved(node, name: str, src: _Info, out_shape) -> _Info | None:
    """Where a permute/transpose puts the channel dim, from its arguments (the shapes alone are ambiguous
    when two dims are equal: 64 tokens of 64 channels)."""
    if name not in ("permute", "transpose") or len(out_shape) != len(src.shape):
        return None
    dims = _sizes_arg(node, "dims")
    if not dims or not all(isinstance(d, int) for d in dims):
        return None
    rank = len(out_shape)
    dims = [d % rank for d in dims]
    if name == "permute" and sorted(dims) == list(range(rank)):
        return _Info(out_shape, dims.index(src.cdim), src.lin)
    if name == "transpose" and len(dims) == 2:
        a, b = dims
        return _Info(out_shape, b if src.cdim == a else a if src.cdim == b else src.cdim, src.lin)
    return None


def _sizes_arg(node, keyword: str) -> list:
    """The sizes/dims a method call takes as varargs or as one sequence (x.permute(0, 2, 1), x.view((1, -1)),
    x.reshape(shape=...)); entries may be fx nodes."""
    if keyword in node.kwargs:
        return list(node.kwargs[keyword])
    sizes = list(node.args[1:])
    return list(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)) else sizes


def _literal_size(node, dim: int, rank: int) -> bool:
    """Whether a reshape/view call gives dim `dim` of its result as a constant (not -1, not read off a tensor)."""
    sizes = _sizes_arg(node, "shape")
    return len(sizes) == rank and isinstance(sizes[dim], int) and sizes[dim] != -1


def _reduced_dims(node, rank: int) -> set[int]:
    """The dims a reduction call reduces over (all of them when it names none)."""
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if dim is None:
        return set(range(rank))
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return {int(d) % rank for d in dims if isinstance(d, int)}


def _module_recipe(mod) -> dict:
    """Enough to rebuild a small leaf module at another width (or as it is, for fixed kernels)."""
    import torch.nn as nn

    kind = type(mod).__name__
    r: dict = {"type": kind}
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        r.update(kernel_size=mod.kernel_size, stride=mod.stride, padding=mod.padding,
                 ceil_mode=mod.ceil_mode)
    elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        r["output_size"] = mod.output_size
    elif isinstance(mod, nn.LayerNorm):
        r["normalized_shape_rank"] = len(mod.normalized_shape)
    elif isinstance(mod, nn.GroupNorm):
        r["num_groups"] = mod.num_groups
    elif kind == "HeadAttention":
        r.update(head_dim=mod.head_dim, dropout=mod.dropout)
    elif isinstance(mod, nn.MultiheadAttention):
        r.update(embed_dim=mod.embed_dim, num_heads=mod.num_heads, batch_first=mod.batch_first)
    elif isinstance(mod, nn.LeakyReLU):
        r["negative_slope"] = mod.negative_slope
    return json.loads(json.dumps(r, default=lambda o: list(o) if isinstance(o, tuple) else str(o)))


def _fn_recipe(node, name: str) -> dict | None:
    """A function/method call with constant (JSON) arguments besides its first tensor, or None."""
    import torch.fx as fx

    rest = list(node.args[1:])
    kwargs = dict(node.kwargs)
    for v in rest + list(kwargs.values()):
        if isinstance(v, fx.Node):
            return None
        if isinstance(v, (list, tuple)) and any(isinstance(x, fx.Node) for x in v):
            return None
    try:
        payload = json.loads(json.dumps({"args": rest, "kwargs": kwargs}))
    except (TypeError, ValueError):
        return None
    return {"name": name, "method": node.op == "call_method", **payload}
