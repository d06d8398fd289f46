"""A service imports only the kernel, the event contracts and itself.

In an event-driven system the contract is the only thing services share: a service that imports
another's code cannot be built, tested or deployed without it, and a refactor inside one service
could break another through the import. This walks every module of every service (its tests
included) and lists each import that crosses a boundary. Cross-service tests live in tests/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = ROOT / "services"
SERVICES = sorted(p.name for p in SERVICES_DIR.iterdir() if (p / "__init__.py").exists() and p.name != "kernel")
CONTRACTS_DIR = ROOT / "schemas" / "contracts"


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """Every module an import statement names (line, dotted name); relative imports resolved."""
    found: list[tuple[int, str]] = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from services import household` names the package services.household.
            found += [(node.lineno, f"{base}.{alias.name}" if base in {"services", "schemas"} else base) for alias in node.names]
    return found


def allowed_prefixes(owner: str) -> tuple[str, ...]:
    """What code owned by ``owner`` (a service name, "kernel" or "contracts") may import of ours."""
    if owner == "contracts":
        return ("schemas.contracts", "services.kernel.envelope")
    if owner == "kernel":
        return ("services.kernel", "schemas")
    return ("services.kernel", "schemas.contracts", f"services.{owner}")


def boundary_violations(source: str, module: str, owner: str) -> list[str]:
    """The imports of ``module`` (owned by ``owner``) that reach into code it must not depend on."""
    ours = ("services", "schemas")
    allowed = allowed_prefixes(owner)
    return [
        f"{module}:{line} imports {name}"
        for line, name in imported_modules(source, module)
        if name.split(".")[0] in ours and not any(name == p or name.startswith(p + ".") for p in allowed)
    ]


def modules_of(folder: Path, package: str) -> list[tuple[Path, str]]:
    return [
        (path, f"{package}.{'.'.join(path.relative_to(folder).with_suffix('').parts)}".removesuffix(".__init__"))
        for path in sorted(folder.rglob("*.py"))
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_the_kernel_the_contracts_and_itself(service: str) -> None:
    problems = [
        problem
        for path, module in modules_of(SERVICES_DIR / service, f"services.{service}")
        for problem in boundary_violations(path.read_text(), module, service)
    ]
    assert problems == []


def test_the_kernel_imports_no_service() -> None:
    problems = [
        problem
        for path, module in modules_of(SERVICES_DIR / "kernel", "services.kernel")
        for problem in boundary_violations(path.read_text(), module, "kernel")
    ]
    assert problems == []


def test_the_contracts_import_nothing_but_the_envelope() -> None:
    problems = [
        problem
        for path, module in modules_of(CONTRACTS_DIR, "schemas.contracts")
        for problem in boundary_violations(path.read_text(), module, "contracts")
    ]
    assert problems == []


@pytest.mark.parametrize(
    "statement",
    [
        "from services.household.events import DossierValidated",
        "from services.household import events",
        "from services import household",
        "import services.identity.events",
        "from ...household.domain import Status",
    ],
)
def test_a_cross_service_import_is_reported_whatever_its_form(statement: str) -> None:
    source = f"from schemas.contracts.household import DossierValidated\n{statement}\n"
    problems = boundary_violations(source, "services.enrolment.tests.test_x", "enrolment")
    assert len(problems) == 1 and ("household" in problems[0] or "identity" in problems[0])


def test_imports_of_the_kernel_the_contracts_and_the_service_itself_are_allowed() -> None:
    source = (
        "from schemas.contracts.household import DossierValidated\n"
        "from services.kernel.envelope import CloudEvent\n"
        "from services.enrolment import domain\n"
        "from . import store\n"
        "import pydantic\n"
    )
    assert boundary_violations(source, "services.enrolment.usecases", "enrolment") == []
