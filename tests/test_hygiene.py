"""Checks over the code base itself: what a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast

from conftest import REPO

WAITS = {"run", "check_output", "check_call", "call"}


def _python_files():
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if not any(p.startswith(".") or p in ("build", "node_modules") for p in rel.parts):
            yield rel, path


def test_every_subprocess_that_is_waited_for_has_a_timeout():
    """One hung child (an emulator, sshd, pip) stalled a whole CI run; every call that waits
    for a subprocess says how long it may take."""
    missing = []
    for rel, path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in WAITS and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "subprocess"
                    and not any(k.arg in ("timeout", None) for k in node.keywords)):
                missing.append(f"{rel}:{node.lineno}")
    assert not missing, f"subprocess calls without timeout=: {missing}"


def test_a_hung_test_fails_by_the_per_test_timeout(pytestconfig, tmp_path):
    """pytest-timeout is on with pyproject's per-test limit, so a test that hangs fails alone
    and the run goes on."""
    import subprocess
    import sys
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 600 <= float(pytestconfig.getini("timeout")) <= 3600
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_hangs():\n    time.sleep(60)\n\ndef test_next():\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--timeout", "2", str(tmp_path)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert "1 failed, 1 passed" in run.stdout and "Timeout" in run.stdout, run.stdout[-1500:]


def test_both_case_queues_offer_what_a_device_worker_asks():
    """WorkQueue and StoreQueue were duck-typed twins; CaseQueue names their shared methods,
    and each keeps every one with the same parameters."""
    import inspect

    from lutfarm.profiler.scheduling.work_queue import CaseQueue, WorkQueue
    from lutfarm.profiler.store.queue import StoreQueue
    wanted = {n: m for n, m in vars(CaseQueue).items()
              if callable(m) and not n.startswith("_") or isinstance(m, property)}
    assert len(wanted) >= 14
    for cls in (WorkQueue, StoreQueue):
        for name, member in wanted.items():
            got = inspect.getattr_static(cls, name, None)
            assert got is not None, f"{cls.__name__} lacks {name}"
            if callable(member):
                assert (list(inspect.signature(got).parameters)
                        == list(inspect.signature(member).parameters)), (cls.__name__, name)
        assert isinstance(cls.shared, bool)


def test_the_controller_reads_environment_variables_only_in_lutfarm_environment():
    """Every variable lutfarm reads has one home with its default (``lutfarm/environment.py``);
    passing the environment on to a child (``dict(os.environ)``) is not reading it."""
    reads = []
    for rel, path in _python_files():
        if rel.parts[0] not in ("lutfarm", "spaces", "lut", "predictors", "search", "profiler"):
            continue
        if rel.as_posix() == "lutfarm/environment.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            call = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and (node.func.attr == "getenv" or node.func.attr in ("get", "__getitem__")
                         and isinstance(node.func.value, ast.Attribute)
                         and node.func.value.attr == "environ"))
            subscript = (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                         and isinstance(node.value, ast.Attribute)
                         and node.value.attr == "environ")
            if call or subscript:
                reads.append(f"{rel}:{node.lineno}")
    assert not reads, f"environment read outside lutfarm/environment.py: {reads}"


def test_readmes_folder_table_names_what_exists():
    """README's map drifted (modules renamed, packages missing); every file and folder it
    names in the table exists where the row says, every package of the tree has a row, every
    sub-package is named in its folder's row and says in its docstring what it holds."""
    import re
    text = (REPO / "README.md").read_text()
    table = text[text.index("| folder (installed as) |"):]
    table = table[:table.index("\n\n")]
    rows = [r for r in table.splitlines()[2:] if r.startswith("| `")]
    folders = [re.match(r"\| `([^`]+)/`", r).group(1) for r in rows]
    for folder in ("spaces", "agents", "profiler", "lut", "predictors", "search", "lutfarm",
                   "bench"):
        assert folder in folders, f"README's folder table has no row for {folder}/"
    missing = []
    for folder, row in zip(folders, rows):
        assert (REPO / folder).is_dir(), f"README names {folder}/, which does not exist"
        for name in re.findall(r"`([\w/]+(?:\.py|/))`", row.split("|", 3)[2]):
            if not (REPO / folder / name).exists():
                missing.append(f"{folder}/{name}")
        for init in (REPO / folder).glob("*/__init__.py"):
            sub = init.parent.name
            if f"`{sub}/`" not in row:
                missing.append(f"{folder}/{sub}/ (a sub-package the row does not name)")
            if not ast.get_docstring(ast.parse(init.read_text())):
                missing.append(f"{folder}/{sub}/__init__.py (no docstring)")
    assert not missing, f"README's folder table and the packages disagree: {missing}"


def test_layers_above_spaces_ask_the_family_not_hasattr_on_a_layout():
    """13 ``hasattr(layout, ...)`` probes picked each layer's path by what a layout object
    happened to have; the Space record's family says it now (spaces/registry.py)."""
    probes = []
    for rel, path in _python_files():
        if rel.parts[0] not in ("lutfarm", "lut", "predictors", "search", "profiler"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "hasattr" and node.args
                    and "layout" in ast.unparse(node.args[0]).lower()):
                probes.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert not probes, probes
