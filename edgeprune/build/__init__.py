"""Config-driven builds for CI: an ordered list of typed stages -> artifacts, a manifest, a report."""

from edgeprune.build.config import BuildConfig, load_build_config
from edgeprune.build.pipeline import run_build

__all__ = ["BuildConfig", "load_build_config", "run_build"]
