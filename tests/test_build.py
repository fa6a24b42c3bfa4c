"""Config-driven builds: strict validation, stage order, failure naming the stage, resume."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgeprune.build import load_build_config, run_build
from edgeprune.build.config import parse_build_config
from edgeprune.cli.main import cli
from edgeprune.errors import ConfigError


def _cfg(tmp_path, text):
    p = tmp_path / "b.toml"
    p.write_text(text)
    return p


BASE = 'schema_version = 1\nname = "t"\n[model]\nspec = "{spec}"\ninput = "1x3x16x16"\n'


@pytest.mark.parametrize("extra,msg", [
    ('[[stages]]\ntype = "info"\ncolour = "red"\n', "unknown key"),
    ('[[stages]]\ntype = "deploy"\n', "unknown type 'deploy'"),
    ('[[stages]]\ntype = "export"\nformats = 3\n', "must be a list"),
    ('[[stages]]\ntype = "bench"\nruns = "many"\n', "must be a int"),
    ('[[stages]]\ntype = "prune"\ntable = "t.json"\n', "exactly one of"),
    ('[[stages]]\ntype = "prune"\ntable = "t.json"\nspeedup = 2\nbalance = 2\n', "'balance' must be in"),
    ('[[stages]]\ntype = "prune"\ntable = "t.json"\nspeedup = 2\nlr = 0\n', "'lr' must be a positive"),
    ('[[stages]]\ntype = "info"\n[[stages]]\ntype = "info"\nname = "01-info"\n', "share a name"),
    ('', r"no \[\[stages"),
])
def test_invalid_configs(tmp_path, extra, msg):
    with pytest.raises(ConfigError, match=msg):
        load_build_config(_cfg(tmp_path, BASE.format(spec="x.py:f") + extra))


def test_schema_version_and_model_required():
    with pytest.raises(ConfigError, match="schema_version"):
        parse_build_config({"model": {"spec": "a:b"}, "stages": [{"type": "info"}]})
    with pytest.raises(ConfigError, match=r"\[model\]"):
        parse_build_config({"schema_version": 1, "stages": [{"type": "info"}]})
    with pytest.raises(ConfigError, match="unknown top-level"):
        parse_build_config({"schema_version": 1, "model": {"spec": "a:b"}, "stages": [], "extra": 1})


def test_run_resume_and_report(tmp_path, tiny_model_file):
    cfg = load_build_config(_cfg(tmp_path, BASE.format(spec=f"{tiny_model_file}:build") + '[[stages]]\ntype = "info"\n'))
    out = tmp_path / "out"
    res = run_build(cfg, out)
    assert res.failed_stage is None
    m = json.loads((out / "build.json").read_text())
    assert m["status"] == "done" and m["stages"][0]["summary"]["params"] == 3 * 8 * 9 + 8 + 16 + 8 * 4 + 4
    assert "params" in (out / "report.md").read_text()
    (out / "01-info").mkdir(exist_ok=True)
    res2 = run_build(cfg, out, resume=True)
    assert json.loads((out / "build.json").read_text())["stages"][0].get("resumed") is True
    assert res2.failed_stage is None


def test_failed_stage_stops_and_is_named(tmp_path):
    cfg_path = _cfg(tmp_path, BASE.format(spec="torchvision:not_a_model") + '[[stages]]\ntype = "info"\n[[stages]]\ntype = "info"\nname = "second"\n')
    r = CliRunner().invoke(cli, ["build", str(cfg_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "stage '01-info' failed" in r.output and "unknown torchvision model" in r.output
    m = json.loads((tmp_path / "o" / "build.json").read_text())
    assert m["status"] == "failed" and [s["label"] for s in m["stages"]] == ["01-info"]


def test_default_build_file_is_valid():
    from pathlib import Path

    cfg = load_build_config(Path(__file__).resolve().parents[1] / "examples" / "default.toml")
    # the demo is the product: measure this host, prune against it, export, time pruned next to dense
    assert [s.type for s in cfg.stages] == ["info", "profile", "export", "prune", "export", "export", "bench"]
    prune = cfg.stages[3]
    assert prune.data == "fashion-mnist" and prune.speedup and prune.speedup > 1


def test_prune_stage_strict_false_reports_a_missed_promise_and_goes_on(tmp_path, monkeypatch):
    """A missed latency promise fails a strict build; a lenient one records it and keeps the pruned model."""
    from edgeprune.build.stages import BuildContext, PruneStage
    from edgeprune.errors import LatencyPromiseError
    import edgeprune.pruning as pruning

    def missed(model_spec, *, out, **kw):
        out.mkdir(parents=True)
        (out / "prune.json").write_text(json.dumps({"predicted_ms": 1.0, "measured": {"measured_ms": 1.2, "ok": False}}))
        raise LatencyPromiseError("latency promise missed on this host: measured 1.2 ms for a 1.0 ms budget")

    monkeypatch.setattr(pruning, "prune_model_spec", missed, raising=False)
    ctx = BuildContext(out=tmp_path, model_spec="m.py:f", input_text="1x3x8x8", weights=None, table="t.json")
    with pytest.raises(LatencyPromiseError):
        PruneStage(speedup=2.0).run(ctx, tmp_path / "strict")
    assert ctx.model_spec == "m.py:f"  # a failed stage hands nothing on
    summary = PruneStage(speedup=2.0, strict=False).run(ctx, tmp_path / "lenient")
    assert "promise missed" in summary["promise_missed"] and summary["measured"]["ok"] is False
    assert ctx.model_spec == str(tmp_path / "lenient")


def test_prune_stage_data_limit_must_be_positive():
    from edgeprune.build.stages import PruneStage

    with pytest.raises(ConfigError, match="data_limit"):
        PruneStage(speedup=2.0, data_limit=0)


def test_describe_lists_every_stage():
    r = CliRunner().invoke(cli, ["build", "--describe"])
    assert r.exit_code == 0
    assert set(json.loads(r.output)) == {"info", "profile", "prune", "export", "bench"}


def test_prune_without_a_table_names_the_fix(tmp_path, tiny_model_file):
    cfg = load_build_config(_cfg(tmp_path, BASE.format(spec=f"{tiny_model_file}:build")
                                 + '[[stages]]\ntype = "prune"\nspeedup = 2.0\n'))
    res = run_build(cfg, tmp_path / "out")
    assert res.failed_stage == "01-prune"
    m = json.loads((tmp_path / "out" / "build.json").read_text())
    assert "profile stage before it" in m["stages"][0]["error"]


def test_profile_stage_hands_its_table_to_later_stages(tmp_path, tiny_model_file):
    cfg = load_build_config(_cfg(tmp_path, BASE.format(spec=f"{tiny_model_file}:build")
                                 + '[[stages]]\ntype = "profile"\nbudget_s = 60\n'))
    out = tmp_path / "out"
    assert run_build(cfg, out).failed_stage is None
    stage = json.loads((out / "build.json").read_text())["stages"][0]
    table = out / "01-profile" / "onnxruntime-fp32.json"
    assert stage["summary"]["table"] == str(table) and stage["context"]["table"] == str(table)
    from edgeprune.latency import LatencyModel, load_table
    from edgeprune.models import load_model, parse_inputs

    module = load_model(f"{tiny_model_file}:build").module
    assert LatencyModel.build(module, parse_inputs("1x3x16x16"), load_table(table)).predict() > 0
