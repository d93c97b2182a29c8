"""The layering of the package: no import cycles in ``fastgan`` and ``fastgan.kernels``, counting the
imports inside functions (a cycle is a layering mistake even when a lazy import hides it at run time).
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = (("fastgan", "fastgan"), ("kernels", "fastgan.kernels"))


def modules() -> dict:
    """{dotted module name: source path} of every module of the installed layout."""
    out = {}
    for folder, pkg in PACKAGES:
        base = os.path.join(ROOT, folder)
        for dirpath, _, files in os.walk(base):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), base)[:-3].replace(os.sep, ".")
                    rel = rel[: -len(".__init__")] if rel.endswith(".__init__") else ("" if rel == "__init__" else rel)
                    out[pkg + ("." + rel if rel else "")] = os.path.join(dirpath, f)
    return out


def import_graph(mods: dict) -> dict:
    """{module: set of package modules it imports} (every import statement, wherever it stands).
    ``from . import x`` is an edge to the submodule x when x is one, else to the package."""
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        here = name if is_pkg else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
            if isinstance(node, ast.ImportFrom):
                base = here
                for _ in range(max(0, node.level - 1)):
                    base = base.rsplit(".", 1)[0]
                target = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in mods]
                targets = subs if len(subs) == len(node.names) else subs + [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    graph = import_graph(modules())
    found = cycles(graph)
    detail = "; ".join(" <-> ".join(c) + " (" + ", ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a])
                                                          if b in c) + ")" for c in found)
    assert not found, f"import cycles: {detail}"


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph(modules())
    assert "fastgan.kernels.ops" in graph["fastgan.backend"]              # inside a function
    assert "fastgan.families.mlp" in graph["fastgan.families"]            # from . import mlp, ...
    assert "fastgan.runconfig" in graph["fastgan.engine"]


def test_config_is_a_leaf():
    """The schema module imports nothing of fastgan but its errors."""
    graph = import_graph(modules())
    assert graph["fastgan.config"] <= {"fastgan.errors"}
