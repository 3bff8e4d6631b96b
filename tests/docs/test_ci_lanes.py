"""`make test` runs the slow tests in two lanes named by paths in the Makefile (CLAIMS_LANE beside the
fast suite, OTHER_SLOW after it): a slow test outside both paths would never run in CI."""

import re

from tests.helpers import REPO


def _paths(name: str, makefile: str) -> list[str]:
    m = re.search(rf"^{name} :?= (.+)$", makefile, re.M)
    assert m, f"{name} is not set in the Makefile"
    return m.group(1).split()


def test_every_slow_test_file_is_in_a_ci_lane():
    makefile = (REPO / "Makefile").read_text()
    lanes = _paths("CLAIMS_LANE", makefile) + _paths("OTHER_SLOW", makefile)
    assert all((REPO / p).exists() for p in lanes), lanes
    slow = [f.relative_to(REPO).as_posix() for f in (REPO / "tests").rglob("test_*.py")
            if re.search(r"mark\.slow\b", f.read_text())]
    assert slow, "no slow test found: the pattern no longer matches how tests are marked"
    outside = [f for f in slow if not any(f == p or f.startswith(p.rstrip("/") + "/") for p in lanes)]
    assert not outside, f"slow tests no CI lane runs (add them to CLAIMS_LANE or OTHER_SLOW in the Makefile): {outside}"
