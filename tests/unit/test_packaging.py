"""The built wheel installs only under the `pilotfish` namespace and imports in a clean venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_layout_and_clean_install(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path / "dist")],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("pilotfish-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {n for n in top if not n.endswith(".dist-info")} == {"pilotfish"}
    assert not any(n.startswith(("training/", "lsp_server/", "code_index/")) for n in names)
    assert any(n.startswith("pilotfish/code_index/queries/") and n.endswith(".scm") for n in names)
    assert "pilotfish/code_index/fusion_model.json" in names  # the ranking's fitted weights
    assert "pilotfish/lsp_server/engine/prompt.py" in names

    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = (
        "import importlib.util as u, pilotfish.lsp_server, pilotfish.code_index.types, "
        "pilotfish.training; "
        "assert u.find_spec('training') is None and u.find_spec('lsp_server') is None; "
        "print(pilotfish.lsp_server.__version__)"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.1.0"
