"""The Argo CD health checks and actions, run in gopher-lua (Argo CD's Lua VM) over their cases.

Every state under testdata/ must be used by a case, so a captured state cannot sit unchecked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.gitops import luacheck
from tests.gitops.luacheck import ARGOCD, KINDS, REPO, ROOT


def referenced(kind_dir: Path) -> set[Path]:
    """Every input/expected file named by the kind's health_test.yaml and action_test.yaml."""
    used: set[Path] = set()
    health = kind_dir / "health_test.yaml"
    if health.exists():
        for case in yaml.safe_load(health.read_text())["tests"]:
            used.add(kind_dir / case["inputPath"])
    actions = kind_dir / "actions" / "action_test.yaml"
    if actions.exists():
        spec = yaml.safe_load(actions.read_text())
        for case in spec.get("discoveryTests") or []:
            used.add(actions.parent / case["inputPath"])
        for case in spec.get("actionTests") or []:
            used.add(actions.parent / case["inputPath"])
            used.add(actions.parent / case["expectedOutputPath"])
    return used


def test_every_case_passes_in_gopher_lua() -> None:
    done = luacheck.run("check", str(ROOT))
    results = luacheck.lines(done.stdout)
    failed = [r for r in results if not r["ok"]]
    assert not failed, "\n".join(str(r) for r in failed)
    assert done.returncode == 0, done.stderr
    suites = {r["suite"] for r in results}
    assert suites == {
        "modelrollout.io/Model",
        "modelrollout.io/ModelVersion",
        "modelrollout.io/ModelVersion/actions",
    }
    cases = {r["case"].split("/")[0] for r in results}
    assert cases == {"health", "discovery", "actions"}
    assert done.stdout.splitlines()[-1] == f"{len(results)} passed, 0 failed"


def test_every_state_file_is_a_test_case() -> None:
    for kind_dir in sorted(p for p in KINDS.iterdir() if p.is_dir()):
        files = set(kind_dir.rglob("testdata/**/*.yaml"))
        unused = files - referenced(kind_dir)
        assert files, f"{kind_dir.name} has no test states"
        assert not unused, f"states no case uses: {sorted(str(p) for p in unused)}"


def test_a_wrong_expectation_fails_the_run(tmp_path: Path) -> None:
    """The runner really compares: flip one expected status and it must report a failure."""
    copy = tmp_path / "rc"
    subprocess.run(["cp", "-r", str(ROOT), str(copy)], check=True)
    test_file = copy / "modelrollout.io" / "Model" / "health_test.yaml"
    spec = yaml.safe_load(test_file.read_text())
    spec["tests"][0]["healthStatus"]["status"] = "Suspended"  # no Model state is Suspended
    test_file.write_text(yaml.safe_dump(spec))
    done = luacheck.run("check", str(copy))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].endswith(" passed, 1 failed")


def test_argocd_cm_is_generated_from_the_lua_files() -> None:
    gen = REPO / "scripts" / "gen-argocd-cm.py"
    done = subprocess.run(
        [sys.executable, str(gen), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    assert data["application.resourceTrackingMethod"] == "annotation"
    for kind in ("Model", "ModelVersion"):
        health = data[f"resource.customizations.health.modelrollout.io_{kind}"]
        assert health == (KINDS / kind / "health.lua").read_text()
        ignored = yaml.safe_load(
            data[f"resource.customizations.ignoreResourceUpdates.modelrollout.io_{kind}"]
        )
        assert "/status" in ignored["jsonPointers"]
    actions = yaml.safe_load(data["resource.customizations.actions.modelrollout.io_ModelVersion"])
    names = {d["name"]: d["action.lua"] for d in actions["definitions"]}
    assert set(names) == {"promote", "abort", "retry", "pause", "resume"}
    for name, script in names.items():
        assert script == (KINDS / "ModelVersion" / "actions" / name / "action.lua").read_text()


def test_example_application_syncs_the_iris_example_server_side() -> None:
    app = yaml.safe_load((ARGOCD / "application-iris.yaml").read_text())
    assert app["kind"] == "Application"
    assert app["spec"]["source"]["path"] == "examples/iris"
    assert (REPO / app["spec"]["source"]["path"]).is_dir()
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert "PruneLast=true" in options
