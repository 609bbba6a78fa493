"""Which images the node runs, and which local program stands in for the image's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelrollout.cluster.node.settings import image_repository, is_project_image, resolve_program


@pytest.mark.parametrize(
    ("image", "repo"),
    [
        ("ghcr.io/modelrollout/modelrollout-serving:0.1.0", "modelrollout/modelrollout-serving"),
        ("localhost:5000/modelrollout:dev", "modelrollout"),
        ("modelrollout/serving@sha256:abc", "modelrollout/serving"),
        ("busybox", "busybox"),
    ],
)
def test_image_repository_strips_registry_tag_and_digest(image: str, repo: str) -> None:
    assert image_repository(image) == repo


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/modelrollout/modelrollout-operator:0.1.0",
        "ghcr.io/acme/modelrollout-serving:latest",
        "modelrollout/serving:dev",
        "modelrollout:latest",
        "registry.local:5000/team/modelrollout",
    ],
)
def test_project_images_run(image: str) -> None:
    assert is_project_image(image)


@pytest.mark.parametrize(
    "image",
    ["tensorflow/serving:2.16", "busybox", "ghcr.io/x/not-modelrollout:1", "modelrollout-foo:1"],
)
def test_other_images_do_not_run(image: str) -> None:
    assert not is_project_image(image)


def test_programs_map_onto_the_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "modelrollout").write_text("#!/bin/sh\n")
    assert resolve_program("python", venv, "") == str(venv / "bin" / "python")
    assert resolve_program("/usr/bin/python3", venv, "") == str(venv / "bin" / "python")
    assert resolve_program("/usr/local/bin/modelrollout", venv, "") == str(
        venv / "bin" / "modelrollout"
    )
    assert resolve_program("sh", venv, "/bin:/usr/bin") in ("/bin/sh", "/usr/bin/sh")
    assert resolve_program("/no/such/program", venv, "/bin") is None
    assert resolve_program(sys.executable, Path(sys.prefix), "") is not None
