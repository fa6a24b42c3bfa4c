"""The ssh transport: Jetson, Raspberry Pi, any Linux board, or a Mac that runs Core ML.

Uses the system OpenSSH client (no Python ssh library): one multiplexed connection per runner
(ControlMaster/ControlPersist), BatchMode (never prompts), host keys checked per the descriptor's
`known_hosts` policy. Remote layout under [connection].workdir:

    artifacts/<sha>/model.<ext>   pushed once per content hash, reused across sessions
    session-XXXXXX/               this runner's agent.py and results; removed by close()

Every remote argument goes through shlex quoting. A bench writes its result JSON on the device
before printing it; when the connection drops mid-run the runner reconnects with backoff, asks
the agent whether the run finished (fetch it), is still running (wait), or never started (run
again), so nothing measured is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from edgeprune.devices.descriptor import DeviceDescriptor
from edgeprune.devices.remote import agent_result_to_bench, agent_source, fingerprint_from_info
from edgeprune.devices.runner import BenchResult, BenchSettings
from edgeprune.errors import DeviceError
from edgeprune.files import sha256_path

log = logging.getLogger(__name__)

_UNREACHABLE = ("Connection refused", "Connection timed out", "No route to host", "Could not resolve hostname",
                "Network is unreachable", "Operation timed out", "Name or service not known",
                "Temporary failure in name resolution")
_DROPPED = ("Connection closed", "Connection reset", "Broken pipe", "mux_client", "kex_exchange_identification",
            "Control socket", "ControlSocket", "client_loop", "banner exchange")


class ConnectionLost(DeviceError):
    """The ssh connection failed in a way a retry can fix."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


class SshRunner:
    retries = 4
    backoff_s = 1.0
    poll_s = 0.5

    def __init__(self, device: DeviceDescriptor):
        self.device = device
        c = device.connection
        self.host = c["host"]
        self.port = int(c["port"])
        self.user = c["user"]
        self.python = c["python"]
        self.workdir = c["workdir"]
        self.trtexec = c["trtexec"]
        self.connect_timeout = int(c["connect_timeout_s"])
        self.command_timeout = int(c["command_timeout_s"])
        self.identity = os.path.expanduser(c["identity_file"]) if c["identity_file"] else None
        self._known_hosts = c["known_hosts"]
        # short path: unix socket names are limited to ~100 bytes
        self._ctl_dir = tempfile.mkdtemp(prefix="ep-ssh-", dir="/tmp" if os.path.isdir("/tmp") else None)
        self._lock = threading.Lock()
        self._session: str | None = None
        self._root: str | None = None
        self._info: dict | None = None
        self._pushed: dict[str, str] = {}
        self._connected = False
        self.events: list[dict] = []  # connection drops, resumes, re-runs: what happened, for tests and logs

    # --- ssh plumbing ------------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def ssh_argv(self, command: str) -> list[str]:
        """The full ssh command line for one remote shell command (exposed for tests and dry runs)."""
        argv = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self._ctl_dir}/%C", "-o", "ControlPersist=120",
                "-o", "LogLevel=ERROR"]
        argv += self._host_key_options()
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.user:
            argv += ["-l", self.user]
        return argv + ["--", self.host, command]

    def _host_key_options(self) -> list[str]:
        policy = self._known_hosts
        if policy == "strict":
            return ["-o", "StrictHostKeyChecking=yes"]
        if policy == "accept-new":
            return ["-o", "StrictHostKeyChecking=accept-new"]
        path = os.path.expanduser(policy)
        if not os.path.isfile(path):
            raise DeviceError(f"known_hosts file {path} for device '{self.device.name}' does not exist; create it with "
                              f"ssh-keyscan -p {self.port} {self.host} > {path} after checking the key's fingerprint")
        return ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={path}"]

    def _ssh(self, command: str, *, stdin=None, input: bytes | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run one remote command; ssh-level failures become DeviceError (ConnectionLost when retryable)."""
        if self.identity and not os.path.isfile(self.identity):
            raise DeviceError(f"identity_file {self.identity} for device '{self.device.name}' does not exist; "
                              "fix [connection].identity_file or create a key with ssh-keygen -t ed25519")
        timeout = timeout or self.command_timeout
        try:
            proc = subprocess.run(self.ssh_argv(command), stdin=stdin, input=input, capture_output=True,
                                  timeout=timeout)
        except FileNotFoundError:
            raise DeviceError("the OpenSSH client 'ssh' is not installed; install openssh-client") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"a command on '{self.device.name}' ({self.target}) did not finish within {timeout:.0f}s; "
                              "raise [connection].command_timeout_s or check the device") from None
        if proc.returncode == 255:
            self._raise_ssh_error(proc.stderr.decode(errors="replace"))
        self._connected = True
        return proc

    def _raise_ssh_error(self, stderr: str) -> None:
        err = " ".join(stderr.split())[-300:]
        name, tgt = self.device.name, self.target
        if "Host key verification failed" in stderr or "HOST IDENTIFICATION HAS CHANGED" in stderr:
            raise DeviceError(f"host key of '{name}' ({tgt}) is unknown or changed; verify its fingerprint and add it "
                              f"(ssh-keyscan -p {self.port} {self.host} >> ~/.ssh/known_hosts), or set "
                              "known_hosts = \"accept-new\" for first contact")
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            raise DeviceError(f"'{name}' ({tgt}) refused the key {self.identity or '(ssh default keys)'}; add its public "
                              "key to the device's ~/.ssh/authorized_keys or fix [connection].identity_file/user")
        if any(s in stderr for s in _UNREACHABLE):
            raise ConnectionLost(f"device '{name}' is unreachable at {tgt} ({err}); check that it is on, the address "
                                 "and port in its descriptor, and that sshd runs there", unreachable=True)
        raise ConnectionLost(f"ssh connection to '{name}' ({tgt}) failed or dropped ({err or 'no message'})")

    def _retrying(self, what: str, fn):
        """Call fn(); on ConnectionLost retry with exponential backoff (a fresh master connection each time)."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except ConnectionLost as e:
                if e.unreachable and not self._connected and attempt >= 1:
                    raise DeviceError(str(e)) from None  # never reached: one retry, not a long backoff
                if attempt == self.retries:
                    raise DeviceError(f"{e} (gave up after {self.retries} retries while {what})") from None
                delay = self.backoff_s * (2 ** attempt)
                self.events.append({"event": "retry", "while": what, "attempt": attempt + 1, "delay_s": delay})
                log.info("ssh %s: %s; retrying in %.1fs", self.device.name, e, delay)
                self._drop_master()
                time.sleep(delay)

    def _drop_master(self) -> None:
        """End the shared connection (a dead one must not be reused by the next command)."""
        try:
            argv = self.ssh_argv("true")[:-3]  # without "--", host, command
            subprocess.run(argv + ["-O", "exit", "--", self.host], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError, DeviceError):
            pass  # no master running, or it is already gone

    # --- remote session ----------------------------------------------------------------------

    def _start(self) -> str:
        with self._lock:
            if self._session is None:
                os.makedirs(self._ctl_dir, mode=0o700, exist_ok=True)  # a closed runner may be used again
                wd = _remote_path(self.workdir)
                # leftovers of runners that died without close(): pushes cut off an hour ago, sessions a day old
                sweep = ("{ find artifacts -name '.incoming-*' -mmin +60 -prune -exec rm -rf {} + ; "
                         "find . -maxdepth 1 -name 'session-*' -mmin +1440 -exec rm -rf {} + ; } 2>/dev/null; ")
                cmd = (f"mkdir -p {wd} && cd {wd} && mkdir -p artifacts && {sweep}"
                       "d=$(mktemp -d \"$PWD/session-XXXXXX\") && mkdir -p \"$d/results\" && echo \"$PWD\" && echo \"$d\"")
                proc = self._retrying("opening a session", lambda: self._ssh(cmd, timeout=self.connect_timeout + 30))
                lines = proc.stdout.decode().strip().splitlines()
                if proc.returncode != 0 or len(lines) < 2:
                    raise DeviceError(f"cannot create the work directory {self.workdir} on '{self.device.name}' "
                                      f"({proc.stderr.decode(errors='replace').strip()[-200:]}); fix [connection].workdir")
                self._root, session = lines[-2], lines[-1]
                agent = f"{session}/agent.py"
                self._retrying("pushing the agent", lambda: self._checked(
                    self._ssh(f"cat > {shlex.quote(agent)}", input=agent_source()), "pushing the agent"))
                self._session = session
        return self._session

    def _checked(self, proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
        if proc.returncode != 0:
            raise DeviceError(f"{what} on '{self.device.name}' failed: "
                              f"{proc.stderr.decode(errors='replace').strip()[-300:] or 'exit ' + str(proc.returncode)}")
        return proc

    def info(self) -> dict:
        """The agent's view of the device: system, runtimes and versions, clocks, thermal zones."""
        if self._info is None:
            session = self._start()
            argv = [self.python, f"{session}/agent.py", "info", "--trtexec", self.trtexec]
            proc = self._retrying("reading device info", lambda: self._ssh(shlex.join(argv), timeout=120))
            if proc.returncode != 0:
                self._raise_python_error(proc)
            self._info = _last_json(proc.stdout)
        return self._info

    def _raise_python_error(self, proc) -> None:
        err = proc.stderr.decode(errors="replace").strip()
        last = err.splitlines()[-1] if err else ""
        if proc.returncode == 127 or (self.python in last and ("not found" in last or "No such file" in last)):
            raise DeviceError(f"python '{self.python}' was not found on '{self.device.name}'; install python3 there or "
                              "set [connection].python to its path")
        raise DeviceError(f"the bench agent failed on '{self.device.name}' (exit {proc.returncode}): {err[-300:]}")

    def push(self, local: str | os.PathLike) -> str:
        """Copy a file or directory to artifacts/<sha>/ once; returns its remote path."""
        local = Path(local)
        sha = sha256_path(local)
        if sha in self._pushed:
            return self._pushed[sha]
        self._start()
        d = f"{self._root}/artifacts/{sha[:32]}"
        dst = f"{d}/model{_safe_suffix(local)}"
        qd, qdst = shlex.quote(d), shlex.quote(dst)
        probe = self._retrying("checking the artifact cache", lambda: self._ssh(f"test -e {qdst} && echo present"))
        if b"present" in probe.stdout:
            self.events.append({"event": "push_skipped", "sha": sha})
        else:
            from edgeprune.progress import status

            with status(f"pushing {local.name} to {self.device.name}"):
                self._retrying("pushing the artifact", lambda: self._push_once(local, qd, qdst))
            self.events.append({"event": "pushed", "sha": sha})
        self._pushed[sha] = dst
        return dst

    def _push_once(self, local: Path, qd: str, qdst: str) -> None:
        tmp = qd + "/.incoming-$$"
        if local.is_dir():
            with tempfile.TemporaryFile() as tf:
                with tarfile.open(fileobj=tf, mode="w") as tar:
                    tar.add(str(local), arcname=".")
                tf.seek(0)
                cmd = f"mkdir -p {tmp} && tar -xf - -C {tmp} && rm -rf {qdst} && mv {tmp} {qdst}"
                self._checked(self._ssh(cmd, stdin=tf), "pushing an artifact")
        else:
            with open(local, "rb") as f:
                cmd = f"mkdir -p {qd} && cat > {tmp} && mv -f {tmp} {qdst}"
                self._checked(self._ssh(cmd, stdin=f), "pushing an artifact")

    # --- Runner protocol ---------------------------------------------------------------------

    def fingerprint(self, runtime: str, threads: int | None = None) -> dict:
        return fingerprint_from_info(self.info(), runtime, threads or self.device.threads)

    def bench(self, artifact, runtime: str, settings: BenchSettings = BenchSettings()) -> BenchResult:
        self.device.require_runtime(runtime)
        path = Path(artifact)
        if not path.exists():
            raise DeviceError(f"artifact not found: {path}")
        info = self.info()
        self._require_remote_runtime(info, runtime)
        remote = self.push(path)
        threads = settings.threads or self.device.threads
        key = hashlib.sha256(f"{remote}|{runtime}|{settings}".encode()).hexdigest()[:16]
        out = f"{self._session}/results/{key}.json"
        argv = [self.python, f"{self._session}/agent.py", "bench", "--artifact", remote, "--runtime", runtime,
                "--out", out, "--warmup", str(settings.warmup), "--min-runs", str(settings.min_runs),
                "--max-runs", str(settings.max_runs), "--max-seconds", str(settings.max_seconds),
                "--rel-tol", str(settings.rel_tol), "--trtexec", self.trtexec,
                "--tool-timeout", str(self.command_timeout)]
        if threads:
            argv += ["--threads", str(threads)]
        if settings.per_layer:
            argv.append("--per-layer")
        if settings.cold_cache:
            argv.append("--cold-cache")
        if runtime == "tensorrt":
            from edgeprune.devices.tools import tensorrt_precision

            argv += ["--precision", tensorrt_precision(path)]
        raw = self._run_resumable(argv, out)
        return agent_result_to_bench(raw, self.device, str(path), runtime, settings,
                                     self.fingerprint(runtime, threads))

    def _require_remote_runtime(self, info: dict, runtime: str) -> None:
        rt = info.get("runtimes", {}).get(runtime, {})
        if not rt.get("available"):
            how = {"tensorrt": f"install TensorRT/JetPack so {self.trtexec} exists, or set [connection].trtexec",
                   "coreml": "pip install coremltools on the Mac"}.get(
                runtime, f"{self.python} -m pip install {_PIP.get(runtime, runtime)}")
            raise DeviceError(f"device '{self.device.name}' has no {runtime} for {info.get('python_executable', self.python)}; "
                              f"{how} there, or remove '{runtime}' from [runtimes].available in {self.device.source}")

    def _run_resumable(self, argv: list[str], out: str) -> dict:
        """Run the agent; if the connection drops, fetch the finished result or wait for the run still going."""
        command = shlex.join(argv)
        status_cmd = shlex.join([self.python, f"{self._session}/agent.py", "status", "--out", out])
        deadline = time.monotonic() + self.command_timeout
        for attempt in range(self.retries + 1):
            try:
                if attempt == 0:
                    proc = self._ssh(command)
                    if proc.returncode not in (0, 3, 4):
                        self._raise_python_error(proc)
                    return _last_json(proc.stdout)
                st = _last_json(self._ssh(status_cmd, timeout=60).stdout)
                while st["state"] == "running" and time.monotonic() < deadline:
                    time.sleep(self.poll_s)
                    st = _last_json(self._ssh(status_cmd, timeout=60).stdout)
                if st["state"] == "done":
                    self.events.append({"event": "resumed", "pid": st["result"].get("pid")})
                    return st["result"]
                if st["state"] == "running":
                    raise DeviceError(f"the bench on '{self.device.name}' is still running after "
                                      f"{self.command_timeout}s; raise [connection].command_timeout_s")
                self.events.append({"event": "rerun"})
                proc = self._ssh(command)
                if proc.returncode not in (0, 3, 4):
                    self._raise_python_error(proc)
                return _last_json(proc.stdout)
            except ConnectionLost as e:
                if attempt == self.retries:
                    raise DeviceError(f"{e} (gave up after {self.retries} retries; results already measured are kept)") from None
                delay = self.backoff_s * (2 ** attempt)
                self.events.append({"event": "connection_lost", "attempt": attempt + 1, "delay_s": delay})
                self._drop_master()
                time.sleep(delay)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Remove this session's remote directory and end the master connection."""
        session, self._session = self._session, None
        if session:
            try:
                self._ssh(f"rm -rf -- {shlex.quote(session)}", timeout=60)
            except DeviceError as e:
                log.warning("could not clean %s on %s: %s", session, self.device.name, e)
        self._drop_master()
        shutil.rmtree(self._ctl_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_PIP = {"onnxruntime": "onnxruntime", "executorch": "executorch", "litert": "ai-edge-litert"}


def _remote_path(path: str) -> str:
    """Quote a remote path, keeping a leading ~/ meaning the remote home."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _safe_suffix(path: Path) -> str:
    """The artifact's extension, reduced to safe characters (the remote name never carries the user's file name)."""
    suffix = "".join(c for c in path.suffix if c.isalnum() or c == ".")
    return suffix if suffix.startswith(".") and len(suffix) > 1 else ""


def _last_json(stdout: bytes) -> dict:
    for line in reversed(stdout.decode(errors="replace").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ConnectionLost("the agent's output ended before its JSON result (connection dropped?)")
