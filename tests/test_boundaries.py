"""The architecture's boundaries (STYLE.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"


def modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(SERVICE.parent).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(SERVICE.rglob("*.py"))
    }


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def users(predicate) -> set[str]:  # type: ignore[no-untyped-def]
    return {name for name, tree in modules().items() if predicate(tree)}


def test_the_tree_is_found() -> None:
    assert "service/storage/s3/store.py" in modules()


def test_only_the_s3_adapter_imports_boto3() -> None:
    def uses_boto(tree: ast.Module) -> bool:
        return any(name.split(".")[0] in {"boto3", "botocore"} for name in imported(tree))

    assert users(uses_boto) == {
        "service/storage/s3/settings.py",  # S3Settings, the boto3 client of the bench
        "service/storage/s3/transport.py",  # botocore's signer and credential chain
    }


def test_only_config_reads_the_environment() -> None:
    def reads_env(tree: ast.Module) -> bool:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
                return True
            if isinstance(node, ast.Name) and node.id in {"environ", "getenv"}:
                return True
        return "os.environ" in imported(tree) or "os.getenv" in imported(tree)

    assert users(reads_env) == {"service/config.py"}


def test_only_the_web_layer_app_and_cli_import_aiohttp_web() -> None:
    def uses_aiohttp_web(tree: ast.Module) -> bool:
        return any(
            name == "aiohttp.web" or name.startswith("aiohttp.web.") for name in imported(tree)
        )

    allowed = {"service/app.py", "service/cli.py"}
    offenders = {
        name
        for name in users(uses_aiohttp_web)
        if name not in allowed and not name.startswith("service/web/")
    }
    assert offenders == set()


NORMALIZER = sorted(name for name in modules() if name.startswith("service/normalize/"))


def test_every_normalizer_module_is_checked() -> None:
    assert len(NORMALIZER) >= 8
    assert "service/normalize/quotes.py" in NORMALIZER


@pytest.mark.parametrize("module", NORMALIZER)
def test_the_normalizer_does_no_io(module: str) -> None:
    """No module of normalize/ imports I/O, a clock, randomness, or another part of
    Vellum that does (it may import its own modules and the types)."""
    forbidden = {"os", "io", "socket", "time", "datetime", "random", "asyncio", "boto3", "aiohttp"}
    forbidden |= {"secrets", "uuid", "subprocess", "pathlib", "threading", "multiprocessing"}
    names = imported(modules()[module])
    assert {name.split(".")[0] for name in names} & forbidden == set()
    vellum = {name for name in names if name.startswith("service.")}
    allowed = ("service.normalize", "service.types", "service.errors")
    assert {name for name in vellum if not name.startswith(allowed)} == set()


def test_the_web_layer_never_imports_the_app() -> None:
    """service.app builds on web/; web/ must not import it back."""

    def imports_app(tree: ast.Module) -> bool:
        return any(
            name == "service.app" or name.startswith("service.app.") for name in imported(tree)
        )

    assert {name for name in users(imports_app) if name.startswith("service/web/")} == set()


def code_map() -> set[str]:
    """The modules README's "Code map" names, as paths (`service/web/auth.py`)."""
    readme = (SERVICE.parent / "README.md").read_text()
    block = readme.split("## Code map", 1)[1].split("```", 2)[1]
    named: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped or line.startswith(" " * 19):  # a continued description
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = stripped.split()[0]
        folders = folders[:depth]
        if name.endswith("/"):
            folders.append(name)
            if name == "normalize/":  # one line for the package (its own rules apply)
                named.add("service/normalize/")
        elif name.endswith(".py"):
            named.add("".join(folders) + name)
    return named


def test_the_code_map_names_every_module_and_no_other() -> None:
    actual = {
        name
        for name in modules()
        if not name.endswith("__init__.py") and not name.startswith("service/normalize/")
    } | {"service/normalize/"}
    assert code_map() == actual
