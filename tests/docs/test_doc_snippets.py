"""Every YAML snippet in the docs is a file under docs/examples/ (verbatim), and every such file
validates on its own — so the docs cannot show a spec that does not load. A block fenced as
```yaml fragment (a few keys of a spec, a CI workflow) is not a whole spec: it must still parse."""

import re

import pytest

from ganrm_bench.harness.spec.load import load_spec
from tests.helpers import REPO

ROOT = REPO
EXAMPLES = ROOT / "docs" / "examples"
DOCS = sorted(
    p for pattern in ("*.md", "docs/**/*.md", "benchmarks/**/*.md", "methods/**/*.md", "metrics/**/*.md", "mini/**/*.md")
    for p in ROOT.glob(pattern)
)
BLOCK = re.compile(r"^```ya?ml([^\n]*)\n(.*?)^```", re.M | re.S)


def all_blocks() -> list[tuple[str, str, bool]]:
    """(where, text, is_fragment) for every ```yaml block of the docs."""
    return [(f"{p.relative_to(ROOT)}:{p.read_text()[: m.start()].count(chr(10)) + 1}", m.group(2), "fragment" in m.group(1))
            for p in DOCS for m in BLOCK.finditer(p.read_text())]


def yaml_blocks() -> list[tuple[str, str]]:
    return [(where, text) for where, text, fragment in all_blocks() if not fragment]


@pytest.mark.parametrize("where,text", [(w, t) for w, t, f in all_blocks() if f], ids=[w for w, _, f in all_blocks() if f])
def test_each_fragment_parses(where, text):
    import yaml

    assert isinstance(yaml.safe_load(text), dict), where


def test_the_docs_have_yaml_snippets():
    assert {"README.md", "docs/plugins.md"} <= {where.split(":")[0] for where, _ in yaml_blocks()}


@pytest.mark.parametrize("where,text", yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_each_yaml_snippet_is_an_example_file(where, text):
    files = {p.name: p.read_text() for p in EXAMPLES.glob("*.yaml")}
    matches = [name for name, body in files.items() if body.strip() == text.strip()]
    assert matches, f"{where}: this ```yaml block is not verbatim one of docs/examples/*.yaml ({', '.join(files)})"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_each_example_validates_on_its_own(path, monkeypatch):
    monkeypatch.chdir(path.parent)  # plugins: files resolve next to the spec either way
    spec = load_spec(path)
    assert spec.methods and spec.metrics


def test_each_example_plugin_is_shown_verbatim_in_the_plugin_guide():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    blocks = [m.group(1).strip() for m in re.finditer(r"^```python\n(.*?)^```", guide, re.M | re.S)]
    for path in sorted(EXAMPLES.glob("*.py")):
        assert path.read_text().strip() in blocks, f"{path.name} is not shown verbatim in docs/plugins.md"
