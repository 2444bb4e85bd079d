"""Emulated ARM boards: the farm's software path on arm64 and armhf without the hardware.

A board is a Debian root filesystem of a foreign architecture (debootstrap from Debian's
registry), its programs run by qemu-user-static through binfmt_misc, with its *own* sshd (the
board's ARM binary) in its own network namespace, key-only login as ``lab`` and its own host
key. lutfarm reaches it over SSH exactly like a board on a lab's network. Everything measured
there is EMULATED: the agent sees an x86 CPU under an ARM interpreter and says so in every
context, LUT header and listing. Root filesystems are cached in ``~/.cache/lutfarm/boards``
(or ``$LUTFARM_BOARDS``): the first build takes minutes, a second start seconds.

Used by tests/test_armboards.py (a session fixture) and by ``scripts/arm-boards.sh``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sshd import SSHHost, _wait_listening, keygen, make_netns

MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-numpy", "python3-pip", "openssh-server")
USER = "lab"


@dataclass(frozen=True)
class BoardSpec:
    arch: str        # Debian architecture
    suite: str       # Debian release
    qemu: str        # qemu-user's name for the CPU (binfmt entry qemu-<qemu>)
    machine: str     # what `uname -m` says on the board

    @property
    def name(self) -> str:
        return f"debian-{self.suite}-{self.arch}"


BOARDS = {
    "arm64": BoardSpec("arm64", "bookworm", "aarch64", "aarch64"),
    "armhf": BoardSpec("armhf", "bookworm", "arm", "armv7l"),
    # an older distribution: Debian 11's Python 3.9 and numpy 1.19
    "arm64-py39": BoardSpec("arm64", "bullseye", "aarch64", "aarch64"),
}


def cache_root() -> Path:
    """$LUTFARM_BOARDS, else ~/.cache/lutfarm/boards: not $LUTFARM_CACHE, which the tests point
    at a fresh folder per session (boards take minutes to build, models seconds)."""
    return Path(os.environ.get("LUTFARM_BOARDS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lutfarm", "boards"))


def unavailable() -> str | None:
    """None if emulated boards can run here, else the reason."""
    if os.geteuid() != 0:
        return "emulated boards need root (debootstrap, chroot, binfmt_misc, netns)"
    for tool, package in (("debootstrap", "debootstrap"), ("ip", "iproute2"),
                          ("ssh-keygen", "openssh-client")):
        if not shutil.which(tool):
            return f"{tool} is missing (apt-get install {package})"
    for spec in BOARDS.values():
        if not Path(f"/usr/libexec/qemu-binfmt/{spec.qemu}-binfmt-P").exists():
            return "qemu-user-static is missing (apt-get install qemu-user-static)"
    try:
        ensure_binfmt()
    except OSError as exc:
        return f"binfmt_misc cannot be used here ({exc})"
    return None


def ensure_binfmt() -> None:
    """Mount binfmt_misc and register qemu-user for every board's CPU (as systemd-binfmt
    would on a machine that runs systemd)."""
    root = Path("/proc/sys/fs/binfmt_misc")
    if not (root / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(root)], check=True,
                       capture_output=True, timeout=1800)
    for spec in BOARDS.values():
        if not (root / f"qemu-{spec.qemu}").exists():
            rule = Path(f"/usr/lib/binfmt.d/qemu-{spec.qemu}.conf").read_text().strip()
            (root / "register").write_text(rule)


def rootfs(spec: BoardSpec, log=sys.stderr) -> Path:
    """The board's root filesystem, built once (debootstrap, then a login user and sshd)."""
    base = cache_root()
    base.mkdir(parents=True, exist_ok=True)
    target = base / spec.name
    with open(base / f"{spec.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one build at a time, others wait for it
        if (target / ".lutfarm-complete").exists():
            return target
        ensure_binfmt()
        tmp = base / f"{spec.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.time()
        print(f"building the emulated {spec.arch} board ({spec.suite}) in {target}: a few "
              f"minutes, once", file=log)
        subprocess.run(["debootstrap", f"--arch={spec.arch}", "--variant=minbase",
                        f"--include={','.join(PACKAGES)}", spec.suite, str(tmp), MIRROR],
                       check=True, capture_output=True, timeout=1800)
        configure(tmp)
        (tmp / ".lutfarm-complete").write_text(f"built in {time.time() - t0:.0f} s\n")
        tmp.rename(target)
        print(f"built in {time.time() - t0:.0f} s", file=log)
        return target


def configure(root: Path) -> None:
    """A login for lutfarm and what the board's sshd needs in a chroot."""
    chroot = ["chroot", str(root)]
    subprocess.run([*chroot, "useradd", "-m", "-s", "/bin/sh", USER], check=True,
                   capture_output=True, timeout=1800)
    # no PAM in the chroot: a locked account ('!') is refused, a '*' one takes keys
    subprocess.run([*chroot, "usermod", "-p", "*", USER], check=True, capture_output=True, timeout=1800)
    (root / "run" / "sshd").mkdir(parents=True, exist_ok=True)
    keygen(root / "etc" / "ssh" / "lutfarm_host_ed25519")


@dataclass
class Board(SSHHost):
    """A running emulated board (an SSHHost whose sshd lives in the board's root)."""

    spec: BoardSpec | None = None
    mounts: tuple[str, ...] = ()

    def device(self, **kw):
        base = dict(kind=f"emu-{self.spec.arch}-{self.spec.suite}", user=USER, python="/usr/bin/python3",
                    workdir="lutfarm")
        base.update(kw)
        return super().device(**base)

    def path(self, inside: str) -> Path:
        """A path on the board, seen from the host (e.g. the login's home)."""
        return self.root / inside.lstrip("/")

    def stop(self) -> None:
        super().stop()
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True, timeout=1800)


def start_board(spec: BoardSpec, index: int, client_pub: str, client_key: Path,
                known_hosts: Path, name: str | None = None) -> Board:
    """Boot the board's sshd (its own ARM binary, under qemu-user) in a new namespace."""
    root = rootfs(spec)
    mounts = []
    # /sys too: runtimes read the CPU list there (onnxruntime's cpuinfo aborts without it)
    for what, how in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"]),
                      ("sys", ["--bind", "/sys"])):
        point = root / what
        if subprocess.run(["mountpoint", "-q", str(point)], timeout=1800).returncode != 0:
            subprocess.run(["mount", *how, str(point)], check=True, capture_output=True, timeout=1800)
            mounts.append(str(point))
    ssh = root / "etc" / "ssh"
    (ssh / "lutfarm_authorized_keys").write_text(client_pub + "\n")
    ns, veth, address = make_netns(index)
    (ssh / "lutfarm_sshd_config").write_text(f"""Port 22
ListenAddress {address}
HostKey /etc/ssh/lutfarm_host_ed25519
AuthorizedKeysFile /etc/ssh/lutfarm_authorized_keys
PidFile /run/lutfarm_sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
""")
    log = open(root / "sshd.log", "w")        # where _wait_listening looks
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "chroot", str(root), "/usr/sbin/sshd",
                             "-D", "-e", "-f", "/etc/ssh/lutfarm_sshd_config"],
                            stdout=subprocess.DEVNULL, stderr=log)
    host_pub = (ssh / "lutfarm_host_ed25519.pub").read_text().split()[:2]
    with open(known_hosts, "a") as f:
        f.write(f"{address} {' '.join(host_pub)}\n")
    board = Board(name or f"emu-{spec.arch}-{index}", address, 22, root, known_hosts,
                  client_key, ns, proc, veth, spec=spec, mounts=tuple(mounts))
    try:
        _wait_listening(board, timeout=60)
    except RuntimeError:
        board.stop()
        raise
    return board


def main(argv=None) -> int:
    """Start emulated boards for a person to try the farm with (scripts/arm-boards.sh)."""
    import argparse
    import signal

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--archs", default="arm64,armhf", help="boards to start: arm64, armhf")
    ap.add_argument("--out", type=Path, default=Path("arm-farm"),
                    help="where the client key, known_hosts and farm.toml go")
    args = ap.parse_args(argv)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in BOARDS]
    why = unavailable() or (f"unknown board(s) {', '.join(unknown)}; choose from "
                            f"{', '.join(BOARDS)}" if unknown else None)
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    key = out / "id_ed25519"
    pub = key.with_suffix(".pub").read_text().strip() if key.exists() else keygen(key)
    known = out / "known_hosts"
    known.write_text("")
    boards = []
    try:
        for i, arch in enumerate(archs):
            boards.append(start_board(BOARDS[arch], 60 + i, pub, key, known,
                                      name=f"emu-{arch}"))
        inventory = out / "farm.toml"
        inventory.write_text("# EMULATED boards (qemu-user): real software path, not "
                             "hardware timings\n" + "".join(b.toml() for b in boards))
        print(f"{len(boards)} emulated board(s) up; inventory {inventory}\n"
              f"  lutfarm devices check --inventory {inventory}\n"
              f"  lutfarm devices provision --inventory {inventory}\n"
              f"  lutfarm profile --inventory {inventory} --runtime tflite --only 'Skip_*'\n"
              f"Ctrl-C stops them.", file=sys.stderr)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        for b in boards:
            b.stop()


if __name__ == "__main__":
    sys.exit(main())
