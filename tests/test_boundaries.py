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
    assert "service/storage/s3.py" in modules()


def test_only_the_s3_adapter_imports_boto3() -> None:
    def uses_boto(tree: ast.Module) -> bool:
        return any(name.split(".")[0] in {"boto3", "botocore"} for name in imported(tree))

    assert users(uses_boto) == {"service/storage/s3.py"}


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


@pytest.mark.parametrize("module", ["service/normalize/text.py", "service/normalize/__init__.py"])
def test_the_normalizer_does_no_io(module: str) -> None:
    forbidden = {"os", "io", "socket", "time", "datetime", "random", "asyncio", "boto3", "aiohttp"}
    tree = modules()[module]
    assert {name.split(".")[0] for name in imported(tree)} & forbidden == set()
