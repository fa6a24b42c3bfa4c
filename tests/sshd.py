"""A real OpenSSH server on loopback for the ssh runner's tests.

Generated host and user keys, a high port, its own config and pid file in a temp dir; works as
root or as an ordinary user (then it can only log in as that user, which is all the tests need).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def sshd_binary() -> str | None:
    for cand in (shutil.which("sshd"), "/usr/sbin/sshd", "/usr/local/sbin/sshd"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


@dataclass
class Sshd:
    dir: Path
    port: int
    user: str
    identity: Path
    known_hosts: Path
    host_pub: str
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def drop_connections(self) -> list[int]:
        """Kill the server side of every open connection (what a network drop looks like to the client)."""
        killed = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:  # ppid: per-connection sshd processes
                pid = int(stat.parent.name)
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        return killed

    def log(self) -> str:
        return (self.dir / "sshd.log").read_text(errors="replace") if (self.dir / "sshd.log").exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeprune-test", "-f", str(path)], check=True)


def start_sshd(d: Path) -> Sshd:
    binary = sshd_binary()
    assert binary, "caller checks sshd_binary() first"
    d.mkdir(parents=True, exist_ok=True)
    _keygen(d / "host_ed25519")
    _keygen(d / "user_ed25519")
    shutil.copy(d / "user_ed25519.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    user = pwd.getpwuid(os.geteuid()).pw_name  # not $USER: containers often leave it wrong or unset
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nPidFile {d / 'sshd.pid'}\nMaxSessions 64\nMaxStartups 64\nLogLevel VERBOSE\n"
    )
    host_pub = (d / "host_ed25519.pub").read_text().split()
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir sshd requires as root
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    server = Sshd(d, port, user, d / "user_ed25519", known, f"{host_pub[0]} {host_pub[1]}", proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode}): {server.log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"sshd did not start listening on {port}: {server.log()[-2000:]}")
