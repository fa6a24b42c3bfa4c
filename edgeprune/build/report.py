"""The build report: report.md for people reading CI logs, report.html + latency.png to look at."""

from __future__ import annotations

import html
from pathlib import Path

from edgeprune.export import artifact_bytes
from edgeprune.files import atomic_write_text


def write_report(out: Path, manifest: dict) -> None:
    lines = [f"# Build report: {manifest['config']['name']}", "",
             f"Status: **{manifest['status']}**  ", f"Model: `{manifest['config']['model']['spec']}`  ",
             f"edgeprune {manifest['edgeprune']}, started {manifest['started']}", "",
             "| stage | type | status | seconds |", "|---|---|---|---|"]
    for s in manifest["stages"]:
        lines.append(f"| {s['label']} | {s['type']} | {s['status']}{' (resumed)' if s.get('resumed') else ''} | {s.get('seconds', '')} |")
    bench_rows = []
    for s in manifest["stages"]:
        summ = s.get("summary") or {}
        if s.get("error"):
            lines += ["", f"**{s['label']} failed:** {s['error']}"]
        if s["type"] == "info" and summ:
            lines += ["", f"## {s['label']}", f"params {summ['params']:,}, MACs {summ['macs'] / 1e6:.2f} M"]
        if s["type"] == "profile" and summ:
            lines += ["", f"## {s['label']}",
                      f"table `{summ.get('table')}`: {summ.get('kernels')} kernels, {summ.get('measured')} new measurements "
                      f"({summ.get('reused')} reused) in {summ.get('seconds', 0):.0f} s"
                      + (" — time budget hit, some kernels sampled coarsely" if summ.get("budget_hit") else "")]
            for v in summ.get("validation") or []:
                if isinstance(v, dict) and "predicted_ms" in v and "measured_ms" in v:
                    lines.append(f"- {v.get('variant', 'variant')}: predicted {v['predicted_ms']:.3f} ms, measured "
                                 f"{v['measured_ms']:.3f} ms ({v.get('error_pct', 0):+.1f}%)")
        if s["type"] == "prune" and summ:
            lines += ["", f"## {s['label']}"] + _prune_lines(summ)
        if s["type"] == "export" and summ:
            lines += ["", f"## {s['label']}", "", "| format | precision | status | size (KB) | parity | notes |", "|---|---|---|---|---|---|"]
            for a in summ.get("artifacts", []):
                lines.append(f"| {a.get('format')} | {a.get('precision')} | {a.get('status', 'ok')} | "
                             f"{artifact_bytes(a) / 1024:.0f} | {_parity(a)} | {'; '.join(a.get('notes', []))[:120]} |")
        if s["type"] == "bench" and summ:
            lines += ["", f"## {s['label']} on {summ['device']}", "",
                      "| from | format | precision | runtime | p50 ms | p90 ms | p99 ms | runs | vs first |",
                      "|---|---|---|---|---|---|---|---|---|"]
            first: dict[tuple, float] = {}
            for r in summ.get("results", []):
                if "p50_ms" in r:
                    bench_rows.append(r)
                    key = (r["format"], r["precision"], r["runtime"])
                    base = first.setdefault(key, r["p50_ms"])
                    ratio = f"{base / r['p50_ms']:.2f}x faster" if r["p50_ms"] > 0 and base != r["p50_ms"] else ""
                    lines.append(f"| {r.get('stage', '')} | {r['format']} | {r['precision']} | {r['runtime']} | {r['p50_ms']:.3f} | "
                                 f"{r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['runs']} | {ratio} |")
                else:
                    lines.append(f"| {r.get('stage', '')} | {r['format']} | {r['precision']} | skipped: {r.get('skipped')} | | | | | |")
    md = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", md)
    png = _plot(out, bench_rows)
    body = "".join(f"<p>{html.escape(line)}</p>" if not line.startswith("|") else f"<pre>{html.escape(line)}</pre>" for line in lines)
    img = f'<img src="{png.name}" alt="latency per artifact">' if png else ""
    atomic_write_text(out / "report.html", f"<!doctype html><meta charset=utf-8><title>edgeprune build</title>"
                                           f"<body style='font-family:sans-serif'>{img}{body}</body>")


def _prune_lines(summ: dict) -> list[str]:
    """What a reader of a prune wants first: the latency promise and the accuracy it cost."""
    lines = []
    if "predicted_ms" in summ:
        lines.append(f"- {summ.get('method')}: predicted {summ.get('predicted_base_ms')} -> {summ['predicted_ms']} ms "
                     f"({summ.get('predicted_speedup')}x) for a {summ.get('budget_ms')} ms budget; "
                     f"kept {summ.get('kept_channels')} of {summ.get('base_channels')} channels")
    m = summ.get("measured") or {}
    if m.get("measured_ms") is not None:
        verdict = "kept" if m.get("ok") else "MISSED"
        lines.append(f"- measured on this host: {m['measured_ms']:.4f} ms, speedup {m.get('measured_speedup')}x "
                     f"vs {m.get('predicted_speedup')}x predicted: promise {verdict}")
    if summ.get("accuracy_before") is not None:
        lines.append(f"- accuracy: {summ['accuracy_before']} before, {summ.get('accuracy_after')} after")
    if summ.get("promise_missed"):
        lines.append(f"- note: {summ['promise_missed']}")
    if summ.get("model_dir"):
        lines.append(f"- pruned model: `{summ['model_dir']}` (plan, report.md and report PNG inside)")
    return lines


def _parity(a: dict) -> str:
    p = a.get("parity") or {}
    if not p:
        return "-"
    if "max_abs_diff" in p:
        ok = "ok" if p.get("passed", True) else "FAIL"
        return f"{ok} (max {p['max_abs_diff']:.1e}, cos {p.get('cosine', float('nan')):.5f})"
    return str(p.get("status", "-"))


def _plot(out: Path, rows: list[dict]) -> Path | None:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.get('stage', '')}\n{r['format']} {r['precision']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows)), 3.5))
    ax.bar(labels, [r["p50_ms"] for r in rows], yerr=[[r["p50_ms"] - r.get("min_ms", r["p50_ms"]) for r in rows],
                                                      [r["p90_ms"] - r["p50_ms"] for r in rows]], capsize=4, color="#4477aa")
    ax.set_ylabel("latency (ms, p50; bars to min / p90)")
    ax.set_title("measured latency per artifact")
    fig.tight_layout()
    path = out / "latency.png"
    tmp = out / ".latency.png.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
