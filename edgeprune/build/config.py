"""Build files: TOML, versioned, strictly validated (an unknown key is an error, never ignored).

    schema_version = 1
    name = "my-model-for-jetson"

    [model]
    spec = "examples/fashion_cnn.py:trained"
    input = "1x1x28x28"

    [[stages]]
    type = "export"
    formats = ["onnx", "executorch"]
    precision = "int8"
    calib = "fashion-mnist"

Each stage type is a frozen dataclass in `stages.py`; its fields (with their docstrings) are
the keys that stage accepts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from edgeprune.errors import ConfigError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelSection:
    spec: str
    """Model spec: torchvision:NAME, file.py:factory, package.module:factory, a .pt2 or an edgeprune dir."""
    input: str | None = None
    """Input shape(s), e.g. 1x3x224x224 (optional for edgeprune model dirs)."""
    weights: str | None = None
    """Optional state_dict checkpoint."""


@dataclass(frozen=True)
class BuildConfig:
    name: str
    model: ModelSection
    stages: tuple
    source: str = ""

    def to_json(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "model": dataclasses.asdict(self.model),
            "stages": [{"type": s.type, **dataclasses.asdict(s)} for s in self.stages],
        }


def stage_fingerprint(stage, model: ModelSection, previous: str = "") -> str:
    """Stable hash of a stage's config and everything before it: decides whether --resume may skip it."""
    blob = json.dumps([previous, dataclasses.asdict(model), stage.type, dataclasses.asdict(stage)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_build_config(path: str | Path) -> BuildConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"build file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from None
    return parse_build_config(data, str(path))


def parse_build_config(data: dict, where: str = "<build>") -> BuildConfig:
    from edgeprune.build.stages import STAGES

    allowed = {"schema_version", "name", "model", "stages"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"{where}: schema_version must be {SCHEMA_VERSION} (got {version!r}); add 'schema_version = 1' at the top")
    name = data.get("name", Path(where).stem)
    if "model" not in data or not isinstance(data["model"], dict):
        raise ConfigError(f"{where}: missing [model] section with at least spec = \"...\"")
    model = _build_dataclass(ModelSection, data["model"], f"{where} [model]")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{where}: no [[stages]]; add at least one, e.g. [[stages]] type = \"export\"")
    stages = []
    for i, raw in enumerate(raw_stages, 1):
        if not isinstance(raw, dict) or "type" not in raw:
            raise ConfigError(f"{where}: stage {i} has no 'type'; use one of {', '.join(STAGES)}")
        raw = dict(raw)
        kind = raw.pop("type")
        if kind not in STAGES:
            raise ConfigError(f"{where}: stage {i} has unknown type '{kind}'; use one of {', '.join(STAGES)}")
        stages.append(_build_dataclass(STAGES[kind], raw, f"{where} stage {i} ({kind})"))
    names = [s.label(i) for i, s in enumerate(stages, 1)]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two stages share a name ({', '.join(names)}); give them distinct 'name' keys")
    return BuildConfig(name=str(name), model=model, stages=tuple(stages), source=where)


def _build_dataclass(cls, raw: dict, where: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key '{name}'")
            continue
        kwargs[name] = _coerce(raw[name], hints[name], f"{where}: '{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, ConfigError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _coerce(value, hint, where: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where} has the wrong type")
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        return tuple(_coerce(v, args[0], where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where} must be a {hint.__name__}, got {value!r}")
        return value
    return value
