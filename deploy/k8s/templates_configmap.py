"""Writes ``island-templates.yaml``: the ConfigMap carrying ``k8s_templates/`` (kustomize may
not read files outside ``deploy/k8s``). Run ``make deploy-templates`` after changing a
template; a test fails while the two differ.

    python deploy/k8s/templates_configmap.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent.parent / "k8s_templates"
OUT = HERE / "island-templates.yaml"
HEADER = "# Generated from k8s_templates/ by deploy/k8s/templates_configmap.py: do not edit.\n"


def key(path: Path) -> str:
    """ConfigMap keys cannot hold "/": ``branches/dev.yaml`` -> ``branches.dev.yaml``."""
    return path.relative_to(TEMPLATES).as_posix().replace("/", ".")


def render() -> str:
    files = sorted(p for p in TEMPLATES.rglob("*.yaml") if p.is_file())
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "islandbot-templates", "namespace": "islandbot"},
        "data": {key(p): p.read_text(encoding="utf-8") for p in files},
    }
    return HEADER + yaml.safe_dump(configmap, sort_keys=False, allow_unicode=True, width=100)


def items() -> list[dict[str, str]]:
    """The volume items that put every key back at its path."""
    files = sorted(p for p in TEMPLATES.rglob("*.yaml") if p.is_file())
    return [{"key": key(p), "path": p.relative_to(TEMPLATES).as_posix()} for p in files]


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
