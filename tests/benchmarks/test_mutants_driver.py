"""`make mutants`' driver (benchmarks/perf/mutants.py) without running cosmic-ray: the operators it
plants, the score it reports, and the groups naming files that exist."""

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _driver():
    spec = importlib.util.spec_from_file_location("mutants_driver", REPO / "benchmarks" / "perf" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_operator_filter_keeps_the_plausible_one_line_bugs():
    m = _driver()
    excluded = re.compile("|".join(f"(:?{e})" for e in m.EXCLUDE))  # as cosmic-ray's operators-filter joins them
    kept = ["core/ReplaceComparisonOperator_Gt_GtE", "core/ReplaceComparisonOperator_Lt_Gt", "core/ReplaceBinaryOperator_Sub_Add",
            "core/NumberReplacer", "core/AddNot", "core/ReplaceAndWithOr", "core/ZeroIterationForLoop"]
    dropped = ["core/ReplaceBinaryOperator_Add_Pow", "core/ReplaceComparisonOperator_Gt_Eq", "core/ReplaceComparisonOperator_Eq_Is",
               "core/VariableReplacer", "core/ReplaceBinaryOperator_Add_Mul", "core/ExceptionReplacer"]
    assert not any(excluded.match(op) for op in kept)
    assert all(excluded.match(op) for op in dropped)


def test_summary_counts_killed_and_survivors():
    m = _driver()
    rows = [{"module": "a.py", "line": 3, "operator": "core/AddNot", "outcome": o} for o in ("killed", "killed", "killed", "survived")]
    rows.append({"module": "a.py", "line": 9, "operator": "core/NumberReplacer", "outcome": "skipped"})
    text = m.summary({"stats": rows})
    assert "| stats | 4 | 3 | 1 | 75 % | 0 |" in text and "- stats: a.py:3 AddNot" in text and "a.py:9" not in text


def test_every_group_names_existing_modules_and_tests():
    m = _driver()
    for modules, tests, _ in m.GROUPS.values():
        assert all((REPO / path).is_file() for path in modules)
        assert all((REPO / t.split("::")[0]).is_file() for t in tests)
