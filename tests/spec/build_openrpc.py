"""Build tests/spec/execution-apis-openrpc.json from the Ethereum JSON-RPC specification.

The specification (ethereum/execution-apis) keeps its methods in ``src/eth/*.yaml`` and
its types in ``src/schemas/*.yaml``; its own tool (``tools/specgen``, Go) assembles them
into one OpenRPC document. This script does the same for the ``eth`` methods, in Python,
following specgen's rules (``tools/internal/specgen``):

* every ``$ref`` (``#/components/schemas/<Name>[/<pointer>]``) is replaced by a copy of the
  schema it names, with the ``$ref``'s sibling keys laid over it (siblings win);
* every ``allOf`` is merged into its parent: ``properties`` united (the parent wins),
  ``required`` concatenated, de-duplicated and sorted, other keys kept from the parent;
* ``error-groups`` references are dropped (this document is for checking *results*).

Unlike specgen's dereferenced output, ``components.schemas`` keeps every type, itself
dereferenced, so tests can check methods the document does not define (e.g. ``net_*``)
against the spec's base types. YAML is read with YAML 1.2 core scalars (as Go's yaml.v3
does): ``0x1`` stays a string and ``on``/``yes`` are not booleans.

Usage (the spec is read from git, no work tree needed)::

    python tests/spec/build_openrpc.py --git-dir PATH/execution-apis/.git --commit HEAD
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent / "execution-apis-openrpc.json"
REF_PREFIX = "#/components/schemas/"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalar resolution (no 1.1 booleans or hex/octal ints)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
         r"|\.(?:nan|NaN|NAN))$", "-+0123456789.")):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class SpecSource:
    """Reads the specification's files from a git repository at one commit."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", commit + "^{commit}").strip()

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.git_dir), *args], check=True,
                              capture_output=True, text=True).stdout

    def yaml_files(self, folder: str) -> list[tuple[str, Any]]:
        names = self._git("ls-tree", "--name-only", self.commit, folder + "/").split()
        return [(n, yaml.load(self._git("show", f"{self.commit}:{n}"), _Yaml12Loader))
                for n in sorted(names) if n.endswith(".yaml")]


def _resolve(ref: str, types: dict[str, Any], visiting: frozenset[str]) -> Any:
    if not ref.startswith(REF_PREFIX):
        raise ValueError(f"unsupported $ref {ref!r}")
    name, _, pointer = ref[len(REF_PREFIX):].partition("/")
    if name not in types:
        raise ValueError(f"$ref {ref!r}: no schema {name}")
    target = types[name]
    if pointer:
        for part in pointer.split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[int(part)] if isinstance(target, list) else target[part]
        return dereference(target, types, visiting)
    if name in visiting:
        raise ValueError(f"$ref {ref!r}: cycle through {sorted(visiting)}")
    return dereference(target, types, visiting | {name})


def dereference(value: Any, types: dict[str, Any], visiting: frozenset[str] = frozenset()
                ) -> Any:
    """A deep copy of ``value`` with every ``$ref`` replaced (specgen's dereference)."""
    if isinstance(value, list):
        return [dereference(v, types, visiting) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: dereference(v, types, visiting) for k, v in value.items() if k != "$ref"}
    if "$ref" in value:
        base = _resolve(value["$ref"], types, visiting)
        for k, v in base.items():
            out.setdefault(k, v)
    return out


def merge_all_of(value: Any) -> Any:
    """A deep copy of ``value`` with every ``allOf`` merged into its parent (specgen's)."""
    if isinstance(value, list):
        return [merge_all_of(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: merge_all_of(v) for k, v in value.items() if k != "allOf"}
    for sub in value.get("allOf", []):
        src = merge_all_of(sub)
        if isinstance(src.get("properties"), dict):
            props = out.setdefault("properties", {})
            for k, v in src["properties"].items():
                props.setdefault(k, v)
        if isinstance(src.get("required"), list):
            required = list(out.get("required", []))
            required += [r for r in src["required"] if r not in required]
            if required:
                out["required"] = sorted(required)
        for k, v in src.items():
            if k not in ("properties", "required"):
                out.setdefault(k, v)
    return out


def expand(schema: Any, types: dict[str, Any]) -> Any:
    return merge_all_of(dereference(schema, types))


def build(source: SpecSource) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for name, doc in source.yaml_files("src/schemas"):
        for key, schema in doc.items():
            if key in types:
                raise ValueError(f"{name}: schema {key} defined twice")
            types[key] = schema
    methods: dict[str, Any] = {}
    for name, doc in source.yaml_files("src/eth"):
        for method in doc:
            if method["name"] in methods:
                raise ValueError(f"{name}: method {method['name']} defined twice")
            method = copy.deepcopy(method)
            method.pop("error-groups", None)
            for param in method.get("params", []):
                if isinstance(param.get("schema"), dict):
                    param["schema"] = expand(param["schema"], types)
            if isinstance(method.get("result", {}).get("schema"), dict):
                method["result"]["schema"] = expand(method["result"]["schema"], types)
            for error in method.get("errors", []):
                if isinstance(error.get("data"), dict):
                    error["data"] = expand(error["data"], types)
            methods[method["name"]] = method
    return {
        "openrpc": "1.4.1",
        "info": {
            "title": "Ethereum JSON-RPC Specification (eth methods)",
            "description": "Built by yilian's tests/spec/build_openrpc.py from "
                           f"ethereum/execution-apis commit {source.commit}.",
            "license": {"name": "CC0-1.0",
                        "url": "https://creativecommons.org/publicdomain/zero/1.0/legalcode"},
            "version": source.commit,
        },
        "methods": [methods[k] for k in sorted(methods)],
        "components": {"schemas": {k: expand(types[k], types) for k in sorted(types)}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True,
                        help="the execution-apis git directory (a bare mirror is fine)")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    doc = build(SpecSource(args.git_dir, args.commit))
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(doc['methods'])} methods from commit {doc['info']['version']}")


if __name__ == "__main__":
    main()
