"""What many test modules share: toy plugins and specs, tiny pipelines, fixtures' builders, the CLI
runner. Imported as `tests.helpers.<module>` (tests/ is a package: no sys.path edits)."""

from pathlib import Path

HELPERS = Path(__file__).resolve().parent  # the toy specs and plugin files
REPO = HELPERS.parents[1]
