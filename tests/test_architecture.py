"""The house rules of docs/architecture.md, checked on the source (issue 15).

Every ``from .x import`` and ``import tracegrad_ase.x`` in the package, at module level or inside a function,
is an edge of the import graph. The graph must have no cycle, and no edge may run up a layer: a module imports
only its own layer or the ones below. Two folders in one layer are independent siblings (neither may import
the other). Deprecated old module paths (``tracegrad_ase/_deprecated.py``'s ``MOVED`` and
``hamiltonian.py``) are the one sanctioned exception, for one release. Sizes: no module over
``MAX_MODULE_LINES``, no function over ``MAX_FUNCTION_LINES``, except the listed ones still to be cut.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tracegrad_ase"

#: Lowest first. A module belongs to the first entry that is a prefix of its dotted name (below the package).
LAYERS: list[list[str]] = [
    ["core"],
    ["io"],
    ["electronic"],
    ["engines", "model"],  # independent: a DFT engine never needs the model, the model never needs an engine
    ["models"],
    ["predict"],
    ["committee", "scf_check"],  # a committee's spread (uncertainty) ∥ one Fock build from a prediction's density
    ["refine"],  # a crystal's prediction replaced by one Kohn-Sham build from its density (the model's settings)
    ["parameters"],  # the calculator's parameter and k-point checks
    ["responses", "wavefunctions"],  # the calculator's optical conductivity and transport ∥ states on a grid (mixins)
    ["calculator"],
    ["interop"],
    ["datasets"],
    ["cli_support"],  # what the commands share: output checks, band-structure and model-listing helpers, demo
    ["cli_strict"],  # the commands' --strict guard
    ["cli_fatbands"],  # bands --projected: projection checks and the fat-band figure
    ["cli_unfold"],  # tracegrad bands --unfold: a supercell's levels on the primitive path
    ["cli_uncertainty"],  # tracegrad bands --uncertainty: the committee's spread shaded
    ["cli_orbitals", "cli_responses"],  # tracegrad orbitals: a molecule's levels and checks ∥ optics, transport
    ["cli_realspace"],  # tracegrad stm: a sheet's states in a bias window, imaged
    # tracegrad evaluate: a model's errors on data (--ensemble: its committee's mean) ∥ tracegrad progress: a
    # training run's standing
    ["cli_evaluate", "cli_progress"],
    ["cli"],
]

#: The package root re-exports a few names and may import anything.
ROOT = "__init__"

#: Old module paths, kept one release as aliases of their new homes: they import upward by design.
SHIMS = {"_deprecated", "atomic", "basis", "datafiles", "deeph", "errors", "graphs", "hamiltonian", "integrals",
         "phonons", "plots", "pymatgen_adapter", "pyscf_truth", "recipes", "sparse_factor", "spectrum", "structures",
         "symmetry", "units"}

#: Imports inside a deprecated method, removed with it in 0.6: (importer, imported).
DEPRECATED_EDGES = {("core.hamiltonian", "electronic.bloch"), ("core.hamiltonian", "electronic.solve")}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80

#: Known offenders still to be cut (module -> lines, or "module:function" -> lines): the test fails if they
#: grow, and asks for the entry to be removed once they fit.
OVERSIZE: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[0] == "shipped":  # package data: the shipped models' own scripts (recipes), not package code
            continue
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Dotted names (below the package) that one import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("tracegrad_ase.")]
    if node.level == 0:
        if node.module is None or not (node.module + ".").startswith("tracegrad_ase."):
            return []
        base = node.module.split(".")[1:]
    else:
        here = importer.split(".") if importer != ROOT else []
        pkg = here if is_package else here[:-1]
        base = pkg[: len(pkg) - (node.level - 1)] + (node.module.split(".") if node.module else [])
    out = []
    for alias in node.names:
        full = ".".join(base + [alias.name])
        out.append(full if full in MODULES else ".".join(base))
    return [m for m in out if m]


def _edges() -> set[tuple[str, str]]:
    edges = set()
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(name, path.name == "__init__.py", node):
                    if target != name:
                        edges.add((name, target))
    return edges


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    for n, layer in enumerate(LAYERS):
        if top in layer:
            return n
    return None


def _checked(module: str) -> bool:
    return module != ROOT and module not in SHIMS


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _checked(m) and _layer(m) is None] == []


def test_no_import_runs_up_a_layer_or_across_siblings():
    bad = []
    for a, b in sorted(_edges()):
        if not _checked(a) or (a, b) in DEPRECATED_EDGES:
            continue
        assert _checked(b), f"{a} imports the deprecated path {b}; import its new home"
        la, lb = _layer(a), _layer(b)
        if lb > la or (lb == la and a.split(".")[0] != b.split(".")[0]):  # up, or across to an independent sibling
            bad.append(f"{a} -> {b}")
    assert bad == []


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        if _checked(a) and _checked(b) and (a, b) not in DEPRECATED_EDGES:
            graph.setdefault(a, set()).add(b)
    # Package __init__ re-exports make a package and its own submodules import each other by construction.
    for a in list(graph):
        graph[a] = {b for b in graph[a] if not b.startswith(a + ".") and not a.startswith(b + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _function_lengths(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_module_and_function_sizes():
    too_big = {}
    for name, path in MODULES.items():
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            too_big[name] = n
        for func, length in _function_lengths(path):
            if length > MAX_FUNCTION_LINES:
                too_big[f"{name}:{func}"] = length
    grown = {k: v for k, v in too_big.items() if v > OVERSIZE.get(k, 0)}
    fixed = sorted(set(OVERSIZE) - set(too_big))
    assert grown == {}, f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function: {grown}"
    assert fixed == [], f"these now fit: remove them from OVERSIZE: {fixed}"


@pytest.mark.parametrize("old", sorted(__import__("tracegrad_ase._deprecated", fromlist=["MOVED"]).MOVED))
def test_old_module_paths_are_their_new_homes(old):
    import sys

    from tracegrad_ase._deprecated import MOVED

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="moved to"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


def test_old_hamiltonian_path_keeps_its_names():
    import sys

    sys.modules.pop("tracegrad_ase.hamiltonian", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("tracegrad_ase.hamiltonian")
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
    from tracegrad_ase.electronic.solve import PREDICTED_LINDEP, generalized_eigh

    assert old.RealSpaceHamiltonian is RealSpaceHamiltonian and old.generalized_eigh is generalized_eigh
    assert old.PREDICTED_LINDEP == PREDICTED_LINDEP and callable(old.near_band_edges)


def test_deprecated_spectral_methods_warn_and_agree():
    import numpy as np

    from tracegrad_ase.electronic import band_energies, bloch_dense
    from conftest import chain_hamiltonian

    ham = chain_hamiltonian()
    k = np.array([[0.0, 0.0, 0.0], [0.25, 0.0, 0.0]])
    with pytest.warns(DeprecationWarning):
        e = ham.eigenvalues(k)
    with pytest.warns(DeprecationWarning):
        hk, sk = ham.bloch(k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(e, band_energies(ham, k))
        h2, s2 = bloch_dense(ham, k)
    assert np.array_equal(hk, h2) and np.array_equal(sk, s2)
