"""Devices: descriptors (devices/*.toml) and runners that measure artifacts on them."""

from edgeprune.devices.descriptor import DeviceDescriptor, list_devices, load_device
from edgeprune.devices.runner import BenchResult, BenchSettings, Runner, get_runner

__all__ = ["BenchResult", "BenchSettings", "DeviceDescriptor", "Runner", "get_runner", "list_devices", "load_device"]
