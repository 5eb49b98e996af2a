"""The site's generated pages cover the code, checked fast (`make docs` builds the whole site, -W).

The tenant API reference shows every operation the app's ``openapi.json`` has, with examples its own
schemas accept; the configuration reference shows every setting; the API reference every public name,
once; every page is in the table of contents; and docstrings are pulled in the one way that renders them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from flask_discord_roles._runtime.config import SETTINGS
from tests.docs.pages import DOCS, ROOT, documentation_pages, relative

# The generators are the site's own Sphinx extensions, found the way docs/conf.py finds them.
sys.path.insert(0, str(Path(__file__).parents[2] / "docs" / "_ext"))

import api_reference
import configuration_reference
import generated_pages
import tenant_api_reference


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return tenant_api_reference.served_document()


@pytest.fixture(scope="module")
def reference(document: dict[str, Any]) -> str:
    return tenant_api_reference.reference(document)


def test_the_tenant_api_page_shows_every_operation_the_app_serves(
    document: dict[str, Any], reference: str
) -> None:
    prefix = document["servers"][0]["url"]
    operations = list(tenant_api_reference.operations(document))
    assert len(operations) >= 20, "openapi.json lost its operations: the reference would be empty"
    missing = [
        tenant_api_reference.title(method, path)
        for method, path, operation in operations
        if f"{method.upper()} {prefix}{path}\n" not in reference or operation["summary"] not in reference
    ]
    assert not missing, f"the tenant API reference leaves out these operations: {missing}"


def test_every_operation_with_a_body_shows_it_and_every_answer_has_an_example(
    document: dict[str, Any], reference: str
) -> None:
    sections = dict(_sections(reference))
    lacking = []
    for method, path, operation in tenant_api_reference.operations(document):
        section = sections[operation["summary"]]
        if "requestBody" in operation and "**Request body**" not in section:
            lacking.append(f"{tenant_api_reference.title(method, path)}: its request body")
        for status in operation["responses"]:
            if int(status) < 400 and f"**Response {status} " not in section:
                lacking.append(f"{tenant_api_reference.title(method, path)}: its {status} answer")
            if int(status) >= 400 and f"| [{status}](#errors) |" not in section:
                lacking.append(f"{tenant_api_reference.title(method, path)}: its {status} error")
    assert not lacking, f"the tenant API reference misses: {lacking}"


def test_the_examples_are_valid_against_the_schemas_they_illustrate(document: dict[str, Any]) -> None:
    renderer = tenant_api_reference.Renderer(document)
    invalid = []
    for method, path, operation in tenant_api_reference.operations(document):
        shown = [("request body", operation.get("requestBody"))]
        shown += [(f"{status} answer", answer) for status, answer in operation["responses"].items()]
        for what, part in shown:
            content = (part or {}).get("content", {}).get("application/json")
            if content is None or "$ref" in content["schema"]:
                continue  # the error examples are the API's own bodies (error_body), not made up
            example = renderer.example(content["schema"])
            validator = jsonschema_rs.Draft202012Validator(content["schema"], validate_formats=True)
            invalid += [
                f"{tenant_api_reference.title(method, path)} {what}: {error.message}"
                for error in validator.iter_errors(example)
            ]
    assert not invalid, "examples on the tenant API page that the API itself would not give or take:\n" + (
        "\n".join(invalid)
    )


def test_the_configuration_page_lists_every_setting() -> None:
    reference = configuration_reference.reference()
    missing = [setting.key for setting in SETTINGS if f"```{{py:data}} {setting.key}\n" not in reference]
    assert not missing, f"the configuration reference leaves out: {missing}"


@pytest.mark.parametrize("name", sorted(generated_pages.GENERATORS))
def test_each_generated_page_holds_its_marker(name: str) -> None:
    page = DOCS / f"{name}.md"
    assert f"<!-- generated: {name} -->" in page.read_text(encoding="utf-8"), (
        f"{relative(page)} lost its <!-- generated: {name} --> marker: its reference would not be built"
    )


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    listed = {
        entry.strip()
        for block in re.findall(r"```\{toctree\}\n(.*?)```", index, re.S)
        for entry in block.splitlines()
        if entry.strip() and not entry.startswith(":")
    }
    pages = {
        str(page.relative_to(DOCS).with_suffix(""))
        for page in documentation_pages()
        if page.parent != ROOT and page.name != "index.md"
    }
    assert not pages - listed, f"pages no one can reach from docs/index.md: {sorted(pages - listed)}"


def test_docstrings_are_pulled_in_through_eval_rst() -> None:
    # Docstrings are reStructuredText: an autodoc directive written as MyST renders them as raw text,
    # and Sphinx does not warn.
    misused = [
        f"{relative(page)}:{line}"
        for page in documentation_pages()
        for line, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"\s*(```|:::)\{auto\w+\}", text)
    ]
    assert not misused, (
        "write autodoc directives inside ```{eval-rst} (`.. autofunction:: flask_discord_roles.x`), "
        f"not as MyST directives: {misused}"
    )


def _sections(reference: str) -> Iterator[tuple[str, str]]:
    """Each operation's section of the reference, by its summary."""
    for match in re.finditer(r"^### ([^\n]+)\n(.*?)(?=^##|\Z)", reference, re.M | re.S):
        yield match.group(1), match.group(2)


def test_the_api_page_documents_every_public_name_once() -> None:
    reference = api_reference.reference()
    directives = re.findall(r"^\.\. (?:auto\w+|py:data):: (\S+)", reference, re.M)
    duplicated = sorted({name for name in directives if directives.count(name) > 1})
    assert not duplicated, f"the API page documents these twice: {duplicated}"
    sections = dict(re.findall(r"^## `(\S+)`\n(.*?)(?=^## |\Z)", reference, re.M | re.S))
    missing = []
    for full_name in sorted(api_reference.documented_names()):
        module_name, _, name = full_name.rpartition(".")
        link = re.search(rf":py:obj:`{name} <(\S+)>`", sections[module_name])
        if full_name not in directives and not (link and link.group(1) in directives):
            missing.append(full_name)
    assert not missing, f"public names the API page neither documents nor links to their home: {missing}"
