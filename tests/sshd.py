"""Real OpenSSH servers for the tests: on 127.0.0.1, or each in its own network namespace.

Every server gets a temporary config, its own host key and an authorized_keys file; nothing
of the machine's own SSH setup is touched. Namespaces (``ip netns`` + a veth pair per host,
10.231.N.0/24) make each device a separate host with its own address; killing every process of
a namespace is a board dropping off the network mid-job.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lutfarm.profiler.devices.record import Device

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sshd_available() -> str | None:
    """None if real sshd can run here, else the reason."""
    if not os.path.exists(SSHD):
        return "openssh-server is not installed (apt-get install openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen is missing"
    return None


def netns_available() -> str | None:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "network namespaces need root and iproute2"
    name = f"lfprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=600)
    return None


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lutfarm-test",
                    "-f", str(path)], check=True, timeout=600)
    return path.with_suffix(".pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SSHHost:
    name: str
    address: str
    port: int
    root: Path
    known_hosts: Path
    client_key: Path
    netns: str | None = None
    proc: subprocess.Popen | None = None
    veth: str | None = None
    extra: dict = field(default_factory=dict)

    def device(self, **kw) -> Device:
        base = dict(name=self.name, transport="ssh", kind="testbox", host=self.address,
                    port=self.port, user=os.environ.get("USER") or "root",
                    key_file=str(self.client_key), known_hosts=str(self.known_hosts),
                    python=sys.executable, workdir=str(self.root / "work"))
        base.update(kw)
        return Device(**base)

    def toml(self, **kw) -> str:
        d = self.device(**kw)
        return (f'[[devices]]\nname = {toml_str(d.name)}\nhost = "{d.host}"\nport = {d.port}\n'
                f'user = "{d.user}"\nkey_file = {toml_str(d.key_file)}\n'
                f'known_hosts = {toml_str(d.known_hosts)}\nkind = "{d.kind}"\n'
                f'python = {toml_str(d.python)}\nworkdir = {toml_str(d.workdir)}\n\n')

    def kill(self) -> None:
        """The board drops off: sshd and every session and agent it runs die at once."""
        if self.netns:
            pids = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True,
                                  text=True, timeout=600).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        elif self.proc:
            for pid in _descendants(self.proc.pid) + [self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc:
            self.proc.wait()

    def stop(self) -> None:
        self.kill()
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=600)
        if self.veth:
            subprocess.run(["ip", "link", "del", self.veth], capture_output=True, timeout=600)


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def make_netns(index: int) -> tuple[str, str, str]:
    """A network namespace joined to this host by a veth pair: (namespace, host-side veth,
    the address inside it, 10.231.<index>.2). Only this machine can reach it."""
    ns, veth = f"lf{os.getpid()}n{index}", f"lf{os.getpid() % 10000}h{index}"
    address, peer = f"10.231.{index}.2", f"lf{os.getpid() % 10000}d{index}"
    for cmd in (["ip", "netns", "add", ns],
                ["ip", "link", "add", veth, "type", "veth", "peer", "name", peer],
                ["ip", "link", "set", peer, "netns", ns],
                ["ip", "addr", "add", f"10.231.{index}.1/24", "dev", veth],
                ["ip", "link", "set", veth, "up"],
                ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", peer],
                ["ip", "netns", "exec", ns, "ip", "link", "set", peer, "up"],
                ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return ns, veth, address


def start_host(root: Path, name: str, client_pub: str, client_key: Path, index: int = 0,
               netns: bool = False, plain_shell: bool = False) -> SSHHost:
    """Start one sshd; with ``netns`` inside its own namespace at 10.231.<index>.2:22.
    ``plain_shell``: commands run without this machine's ~/.bashrc (bash sources it for an ssh
    command only at shell level 1; SHLVL=1 makes that level 2), as on a board whose login
    has no pyenv or cargo set-up: a benchmark's boards then start as cheaply as a board's."""
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(exist_ok=True)   # sshd's privilege-separation directory
    host_key = root / "host_ed25519"
    host_pub = keygen(host_key)
    (root / "authorized_keys").write_text(client_pub + "\n")
    ns = veth = None
    if netns:
        ns, veth, address = make_netns(index)
        port = 22
    else:
        address, port = "127.0.0.1", free_port()
    config = root / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress {address}
HostKey {host_key}
AuthorizedKeysFile {root / 'authorized_keys'}
PidFile {root / 'sshd.pid'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
""" + ("SetEnv SHLVL=1\n" if plain_shell else ""))
    cmd = [SSHD, "-D", "-e", "-f", str(config)]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(root / "sshd.log", "w"))
    host_id = address if port == 22 else f"[{address}]:{port}"
    known = root / "known_hosts"
    known.write_text(f"{host_id} {' '.join(host_pub.split()[:2])}\n")
    h = SSHHost(name, address, port, root, known, client_key, ns, proc, veth)
    _wait_listening(h)
    return h


def _wait_listening(h: SSHHost, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if h.proc.poll() is not None:
            raise RuntimeError(f"sshd for {h.name} exited: {(h.root / 'sshd.log').read_text()}")
        try:
            with socket.create_connection((h.address, h.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd for {h.name} did not start listening")
