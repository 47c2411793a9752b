"""The checker registry (emulator/check/__init__.py): one Rule per reported rule id, one
checker class per rule family, registered under the rule it reports."""

from __future__ import annotations

from emulator.check import CHECKERS, RULES, Rule, all_checkers
from emulator.check.base import Checker


def test_every_checker_is_registered_under_the_rule_it_reports() -> None:
    assert CHECKERS
    for rule, cls in CHECKERS.items():
        assert issubclass(cls, Checker) and cls.rule == rule


def test_the_rules_keep_the_report_strings_in_semantics_order() -> None:
    """Reports and traces name rules by these strings: a new rule may come, none may change."""
    known = ["single_entry", "lock_discipline", "deadlock", "stale_structure", "lost_store",
             "invalidate", "return_code", "async_clean", "starvation", "crash"]
    assert [str(r) for r in RULES if r in known] == known
    assert Rule.LOST_STORE == "lost_store" and f"{Rule.CRASH}" == "crash"


def test_all_checkers_follows_the_registry_order() -> None:
    assert all_checkers() == list(CHECKERS.values())
    order = [r for r in RULES if r in CHECKERS]
    assert list(CHECKERS) == order  # subscription order: which fires first at one event
