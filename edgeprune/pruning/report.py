"""The pruned directory's short report: report.md (numbers) and report.png (channels kept per layer)."""

from __future__ import annotations

from pathlib import Path


def write_report(directory: Path, summary: dict, layers: list[dict]) -> None:
    directory = Path(directory)
    (directory / "report.md").write_text(_markdown(summary, layers), encoding="utf-8")
    try:
        _plot(directory / "report.png", layers, summary)
    except Exception:  # the plot is a convenience; the numbers are in report.md and prune.json
        pass


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{100 * v:.2f}%" if pct else f"{v:.3f}"


def _markdown(s: dict, layers: list[dict]) -> str:
    m = s.get("measured") or {}
    t = s.get("table") or {}
    lines = [
        f"# Pruned {s['model']}",
        "",
        f"Method **{s['method']}** (importance {s['importance']}, value {_value(s)}) against `{s['table']}` "
        f"({t.get('device')}, {t.get('runtime')} {t.get('precision')}, {t.get('threads')} threads).",
        "",
        "| | unpruned | pruned |",
        "|---|---:|---:|",
        f"| predicted latency (ms) | {_fmt(s['predicted_base_ms'])} | {_fmt(s['predicted_ms'])} |",
    ]
    if "measured_ms" in m:
        lines.append(f"| measured latency (ms) | {_fmt(m['measured_base_ms'])} | {_fmt(m['measured_ms'])} |")
    if s.get("accuracy_before") is not None:
        lines.append(f"| accuracy ({s['data']}) | {_fmt(s['accuracy_before'], True)} | {_fmt(s['accuracy_after'], True)} |")
    lines.append(f"| channels (prunable layers) | {s['base_channels']} | {s['kept_channels']} |")
    lines += ["", f"Budget {s['budget_ms']:.3f} ms; minimum reachable {s['minimum_reachable_ms']:.3f} ms; "
              f"predicted speedup {s['predicted_speedup']}x."]
    if "measured_ms" in m:
        lines.append(f"Measured speedup {m['measured_speedup']}x ({100 * m['speedup_share']:.0f}% of predicted); "
                     f"within budget (+3%): {'yes' if m['within_budget'] else 'NO'}.")
    elif m.get("skipped"):
        lines.append(f"Not measured: {m['skipped']}.")
    lines += ["", "Uniform: the widths uniform pruning would keep for the same predicted budget (the widest common "
              "share); a layer kept far below it is a deep single cut (`--balance` bounds those).",
              "", "| layer | channels | kept | uniform |", "|---|---:|---:|---:|"]
    lines += [f"| {r['layer']} | {r['channels']} | {_kept(r)} | {r.get('uniform') if r.get('uniform') is not None else '-'} |"
              for r in layers]
    return "\n".join(lines) + "\n"


def _value(s: dict) -> str:
    """What the knapsack kept most of: measured sensitivity (with its time) or importance shares."""
    v = s.get("value", "importance")
    if v != "sensitivity" or not s.get("value_seconds"):
        return v
    probes = f" at {s['value_probes']} widths" if s.get("value_probes") else ""
    return f"{v}, measured{probes} in {s['value_seconds']:.0f} s"


def _kept(row: dict) -> str:
    """Kept channels; for an attention layer's q/k/v rows, the heads they are."""
    return f"{row['kept']} ({row['heads']} heads)" if row.get("heads") else str(row["kept"])


def _plot(path: Path, layers: list[dict], s: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(layers)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * n + 2), 3.6))
    xs = range(n)
    ax.bar(xs, [r["channels"] for r in layers], color="#d0d7de", label="unpruned")
    ax.bar(xs, [r["kept"] for r in layers], color="#2f81f7", label="kept")
    uni = [(x, r["uniform"]) for x, r in zip(xs, layers) if r.get("uniform") is not None]
    if uni:
        ax.scatter([x for x, _ in uni], [u for _, u in uni], marker="_", s=120, color="black", zorder=3,
                   label="uniform plan, same budget")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r["layer"] for r in layers], rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("out channels")
    ax.set_title(f"{s['method']}: {s['predicted_base_ms']:.3f} -> {s['predicted_ms']:.3f} ms predicted")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
