"""lutfarm installs two import names, ``lutfarm`` and ``lutfarm_agent``, so it lives beside
packages called ``agents`` (OpenAI's SDK) or ``spaces`` (Hugging Face) in one environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

DUMMIES = {"agents": "openai-agents stand-in", "spaces": "huggingface-spaces stand-in"}

CHECK = """
import sys, agents, spaces, lutfarm, lutfarm_agent
import lutfarm.profiler.scheduling.campaign, lutfarm.lut.query, lutfarm.search.methods.evolution
import lutfarm.predictors.block_latency, lutfarm.spaces.fbnet, lutfarm.cli
import lutfarm_agent.runtimes.onnxruntime_rt
assert agents.WHO == {agents!r} and spaces.WHO == {spaces!r}, (agents.WHO, spaces.WHO)
root = sys.argv[1]
for mod in (lutfarm, lutfarm.profiler.scheduling.campaign, lutfarm.lut.query, lutfarm_agent):
    assert mod.__file__.startswith(root), (mod.__name__, mod.__file__, root)
from lutfarm.lut.hwnasbench import BUNDLED
assert BUNDLED.is_file(), BUNDLED
print("ok")
"""


def _dummies(where: Path) -> None:
    for name, who in DUMMIES.items():
        (where / name).mkdir()
        (where / name / "__init__.py").write_text(f"WHO = {who!r}\n")


def _check(root: Path, cwd: Path) -> None:
    code = CHECK.format(**DUMMIES)
    proc = subprocess.run([sys.executable, "-c", code, str(root)], cwd=cwd, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
                          timeout=300)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_regular_install_sits_beside_packages_named_agents_and_spaces(tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(REPO)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    installed = sorted(p.name for p in target.iterdir()
                       if (p / "__init__.py").exists() or p.suffix == ".py")
    assert installed == ["lutfarm", "lutfarm_agent"]
    _dummies(target)
    _check(target, target)


def test_editable_install_sits_beside_packages_named_agents_and_spaces(tmp_path):
    """The development install (the repo's folders mapped onto lutfarm.*) from any directory."""
    _dummies(tmp_path)
    _check(REPO, tmp_path)


LIGHT = """
import sys
import lutfarm.errors, lutfarm.environment, lutfarm.spaces.registry
loaded = sorted(m for m in sys.modules if m.startswith(("lutfarm", "paramiko", "torch")))
print(len(loaded), *loaded)
import lutfarm
assert lutfarm.Store.__module__.startswith("lutfarm.profiler.store") and "Store" in dir(lutfarm)
from lutfarm import run_campaign, RuntimeConfig   # the notebook face still works
"""


def test_importing_a_bottom_module_does_not_load_the_controller():
    """``import lutfarm.errors`` loaded 36 lutfarm modules and paramiko when the package's face
    imported eagerly; the face is lazy now."""
    proc = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, *loaded = proc.stdout.split()
    assert not [m for m in loaded if m.startswith(("paramiko", "torch", "lutfarm.profiler"))]
    assert int(count) <= 10, loaded
