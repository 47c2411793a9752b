"""The pytest plugin (emulator/pytest_plugin.py, emulator/explore_in_test.py), run
inside pytester sessions: a user's test file explores a variant and the outer test
reads what pytest printed and what the failure database holds."""

from __future__ import annotations

import os
import re
import shlex
import textwrap
from pathlib import Path

import pytest

from emulator.cli import main as vmemu_main

# pytester for this module only: the rest of the suite does not need it.
pytest_plugins = ["pytester"]



@pytest.fixture(autouse=True)
def _plugin_installed(request: pytest.FixtureRequest) -> None:
    """The inner sessions load the plugin through its entry point, which only an
    install writes: a virtualenv made before it gets one clear failure here."""
    if not request.config.pluginmanager.has_plugin("vmemu"):
        pytest.fail("the vmemu pytest plugin is not registered: run `pip install -e .` so "
                    "the pytest11 entry point is installed", pytrace=False)


# A user's own clean routine, bound at module level in the test file: a mutant's
# code while BROKEN, the reference's once fixed.
USER_TEST = '''
import pytest
from emulator.variants import BUILTIN

BROKEN = {broken}

async def my_clean(vm_map, start, end, syncio, invalidate):
    code = BUILTIN[{mutant!r} if BROKEN else "reference"].clean
    return await code(vm_map, start, end, syncio, invalidate)

def test_my_clean(vmemu):
    vmemu.explore("writers_vs_msync", my_clean, iterations=10)
'''


def user_test(broken: bool, mutant: str = "no_map_lock") -> str:
    return USER_TEST.format(broken=broken, mutant=mutant)


def saved(pytester: pytest.Pytester, db: str = ".vmemu") -> list[str]:
    root = pytester.path / db / "failures"
    return sorted(str(p.relative_to(pytester.path)) for p in root.glob("*/*.trace.jsonl"))


def printed(result: pytest.RunResult, label: str) -> str:
    """The command the failure report prints after ``label:``."""
    match = re.search(rf"^\s*{label}: (vmemu .*)$", result.stdout.str(), re.MULTILINE)
    assert match is not None, result.stdout.str()
    return match.group(1)


def test_a_reference_exploration_passes_and_reports_what_it_covered(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ref='''
        def test_reference(vmemu):
            done = vmemu.explore("two_cleaners", iterations=12)
            assert done.executions == 12
            assert done.coverage["executions"] == 12
    ''')
    result = pytester.runpytest("-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*explored 12 executions of two_cleaners (profile manpage, variant reference, "
        "strategy portfolio, seeds 0..11): ok; coverage: *"])
    assert saved(pytester) == []


def test_a_mutant_fails_the_test_with_rule_message_and_the_commands_that_reproduce_it(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_mine=user_test(broken=True))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "vmemu: exploring writers_vs_msync (profile manpage, variant test_mine.py:my_clean, "
        "strategy portfolio, seeds 0..*) found a violation:",
        "VIOLATION single_entry at step * (seed *): * took the map lock of p0 * while cpu0's "
        "clean of * has been inside the routine since step *",
        "  rerun with: vmemu run writers_vs_msync --variant test_mine.py:my_clean --strategy * "
        "--seed *",
        "  trace: .vmemu/failures/*/writers_vs_msync-manpage-seed*.trace.jsonl",
        "  replay with: vmemu replay .vmemu/failures/*/writers_vs_msync-manpage-seed*"
        ".trace.jsonl --variant test_mine.py:my_clean",
    ])
    [trace] = saved(pytester)
    # The printed commands are exact: run from where pytest ran, they reproduce it.
    replay = shlex.split(printed(result, "replay with"))
    assert replay[2] == trace
    capsys.readouterr()
    assert vmemu_main(replay[1:]) == 1
    out = capsys.readouterr().out
    assert "behaviour never changed" in out
    assert "VIOLATION single_entry" in out
    assert vmemu_main(shlex.split(printed(result, "rerun with"))[1:]) == 1
    assert "VIOLATION single_entry" in capsys.readouterr().out


def test_the_next_run_replays_the_saved_failure_before_exploring(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=user_test(broken=True))
    pytester.runpytest().assert_outcomes(failed=1)
    [trace] = saved(pytester)
    # Seeds the first run never took: the failure can only come from the database.
    result = pytester.runpytest("--vmemu-seed", "1000")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "vmemu: a saved failure of this test, replayed before any new exploration, still "
        "fails (writers_vs_msync, variant test_mine.py:my_clean):",
        "VIOLATION single_entry at step * (seed 0): *",
        "  rerun with: vmemu run writers_vs_msync --variant test_mine.py:my_clean --strategy "
        "random --seed 0",
        f"  trace: {trace}",
        "*Captured vmemu call*",
        f"replayed saved failure {trace}: still fails",
    ])
    assert "explored" not in result.stdout.str()  # no new exploration after it
    assert saved(pytester) == [trace]


def test_a_fixed_variant_passes_its_saved_failure_which_is_dropped(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=user_test(broken=True))
    pytester.runpytest().assert_outcomes(failed=1)
    [trace] = saved(pytester)
    pytester.makepyfile(test_mine=user_test(broken=False))
    result = pytester.runpytest("-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"replayed saved failure {trace}: passes now, dropped from the database",
        "explored 10 executions of writers_vs_msync *: ok; *",
    ])
    assert saved(pytester) == []
    assert not (pytester.path / os.path.dirname(trace)).exists()
    again = pytester.runpytest("-rP")
    again.assert_outcomes(passed=1)
    assert "replayed" not in again.stdout.str()


def test_the_saved_failure_is_found_from_another_working_directory(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The printed --variant names follow the working directory; the database key
    does not."""
    pytester.makeini("[pytest]\n")
    pytester.mkpydir("sub")
    (pytester.path / "sub" / "test_mine.py").write_text(user_test(broken=True))
    first = pytester.runpytest("sub")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*--variant sub/test_mine.py:my_clean"])
    monkeypatch.chdir(pytester.path / "sub")
    second = pytester.runpytest()
    second.assert_outcomes(failed=1)
    second.stdout.fnmatch_lines(["*replayed before any new exploration, still fails*",
                                 "*--variant test_mine.py:my_clean"])


def test_a_changed_variant_that_still_fails_the_saved_schedule_is_saved_as_it_fails_now(
        pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_mine=user_test(broken=True, mutant="no_map_lock"))
    pytester.runpytest().assert_outcomes(failed=1)
    before = (pytester.path / saved(pytester)[0]).read_text()
    pytester.makepyfile(test_mine=user_test(broken=True, mutant="shared_map_lock"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*replayed before any new exploration, still fails*",
                                 "VIOLATION single_entry at step *: *"])
    [trace] = saved(pytester)
    assert (pytester.path / trace).read_text() != before
    # The saved trace is what the code does now: it replays without a difference.
    capsys.readouterr()
    assert vmemu_main(shlex.split(printed(result, "replay with"))[1:]) == 1
    assert "behaviour never changed" in capsys.readouterr().out


def test_a_variant_object_and_a_nested_function_both_explore(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_objects='''
        from emulator.variants import BUILTIN, Variant

        async def broken(vm_map, start, end, syncio, invalidate):
            return await BUILTIN["no_map_lock"].clean(vm_map, start, end, syncio, invalidate)

        MINE = Variant("mine", broken)

        def test_variant_object(vmemu):
            vmemu.explore("writers_vs_msync", MINE, iterations=5)

        def test_nested_function(vmemu):
            async def inner(vm_map, start, end, syncio, invalidate):
                return await broken(vm_map, start, end, syncio, invalidate)
            vmemu.explore("writers_vs_msync", inner, iterations=5)
    ''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*variant test_objects.py:MINE,*found a violation:",
        "  replay with: vmemu replay * --variant test_objects.py:MINE",
    ])
    result.stdout.fnmatch_lines([
        "*variant test_nested_function.<locals>.inner (not importable)*found a violation:",
        "VIOLATION single_entry *",
        "  trace: .vmemu/failures/*",
        "  replay with: none from the command line: *",
    ])
    # Replayed from the test, which passes the function again: never loaded from a trace.
    second = pytester.runpytest()
    second.assert_outcomes(failed=2)
    # (Each line is matched, not counted: with CI set, pytest's short summary repeats it.)
    second.stdout.fnmatch_lines_random([
        "*replayed before any new exploration, still fails (writers_vs_msync, "
        "variant test_objects.py:MINE)*",
        "*replayed before any new exploration, still fails (writers_vs_msync, "
        "variant test_nested_function.<locals>.inner (not importable))*",
    ])
    assert "found a violation" not in second.stdout.str()


def test_the_marker_gives_the_tests_explorations_their_defaults(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked='''
        import pytest

        @pytest.mark.vmemu("two_cleaners", variant="reference", iterations=6)
        def test_marked(vmemu):
            assert vmemu.explore().executions == 6
            assert vmemu.explore(iterations=3, seed=10).executions == 3

        @pytest.mark.vmemu(workload="two_cleaners", variant="no_write_protect",
                           strategy="dfs", preemption_bound=1)
        def test_marked_mutant(vmemu):
            vmemu.explore()

        @pytest.mark.vmemu("two_cleaners", iteration=6)
        def test_misspelt(vmemu):
            pass
    ''')
    result = pytester.runpytest("-rP", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*explored 6 executions of two_cleaners (*seeds 0..5): ok*",
        "*explored 3 executions of two_cleaners (*seeds 10..12): ok*",
    ])
    result.stdout.fnmatch_lines([
        "vmemu: exploring two_cleaners (profile manpage, variant no_write_protect, strategy "
        "dfs, preemption bound 1) found a violation:",
        "VIOLATION lost_store at step *: *",
    ])
    result.stdout.fnmatch_lines(["*TypeError: @pytest.mark.vmemu: unknown option "
                                 "'iteration' (it takes a workload and the keywords *"])


def test_seed_budget_and_database_options_reach_every_exploration(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=user_test(broken=True))
    pytester.makepyfile(test_ref='''
        def test_reference(vmemu):
            vmemu.explore("two_cleaners", iterations=50, seed=3)
    ''')
    result = pytester.runpytest("-rP", "--vmemu-seed", "7", "--vmemu-budget", "4",
                                "--vmemu-db", "elsewhere")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "vmemu: seed 7, budget 4 executions per exploration, database elsewhere",
        "*variant test_mine.py:my_clean, strategy portfolio, seeds 7..7) found a violation:",
        "*--seed 7",
        "*explored 4 executions of two_cleaners (*seeds 10..13): ok*",
    ])
    assert saved(pytester) == []
    assert len(saved(pytester, "elsewhere")) == 1


@pytest.mark.parametrize(("option", "value", "complaint"), [
    ("--vmemu-budget", "0", "must be positive"),
    ("--vmemu-budget", "lots", "give executions (500) or seconds (30s)"),
    ("--vmemu-seed", "-1", "a seed is not negative"),
    ("--vmemu-seed", "x", "give a seed"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, option: str, value: str,
                                      complaint: str) -> None:
    result = pytester.runpytest(option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*argument {option}: *{complaint}*"])


def test_a_time_budget_and_a_random_seed_are_accepted_and_shown(
        pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--vmemu-seed", "random", "--vmemu-budget", "0.5s")
    result.stdout.fnmatch_lines([
        "vmemu: seed * (random: --vmemu-seed * repeats it), budget 0.5s per exploration, "
        "database .vmemu"])
    seeds = re.findall(r"seed (\d+) \(random: --vmemu-seed (\d+) ", result.stdout.str())
    assert len(seeds) == 1 and seeds[0][0] == seeds[0][1]


def test_a_bad_workload_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad='''
        def test_bad(vmemu):
            vmemu.explore("no_such_workload")
    ''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["vmemu: unknown workload 'no_such_workload'*"])


def test_the_plugin_is_inert_in_a_run_that_does_not_use_it(pytester: pytest.Pytester) -> None:
    """Loaded by its entry point in every run: a strict run of unrelated tests is
    untouched, nothing is written, and the emulator is not even imported."""
    pytester.makepyfile(test_plain=textwrap.dedent('''
        import sys

        def test_plain():
            assert "emulator.explore_in_test" not in sys.modules
    '''))
    pytester.makeini("[pytest]\naddopts = --strict-markers --strict-config\n"
                     "filterwarnings = error\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["vmemu: seed 0, budget each test's own (default 200 "
                                 "executions), database .vmemu"])
    assert not (pytester.path / ".vmemu").exists()
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.vmemu(workload, *): defaults for the vmemu "
                                  "fixture's explore() in this test"])


def test_an_async_test_is_told_to_call_explore_from_a_plain_one(
        pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_async='''
        async def test_async(vmemu):
            vmemu.explore("two_cleaners", iterations=1)
    ''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: vmemu.explore runs its own trio loop: call "
                                 "it from a plain `def` test, not an `async def` one"])


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> tuple[str, list[list[str]]]:
    """The plugin section's test file, and the lines each ``$ python -m pytest`` shows."""
    text = README.read_text()
    source = re.search(r"```python\n(# test_my_clean\.py\n.*?)```", text, re.S)
    shown = re.search(r"```text\n(\$ python -m pytest test_my_clean\.py\n.*?)```", text, re.S)
    assert source is not None and shown is not None
    runs: list[list[str]] = []
    for line in shown.group(1).splitlines():
        if line.startswith("$ "):
            runs.append([])
        elif line != "...":  # "...": lines the README leaves out
            # fnmatch patterns: brackets literal, the database key any digest.
            line = line.replace("[", "[[]")
            runs[-1].append(re.sub(r"failures/[0-9a-f]{16}/", "failures/*/", line))
    return source.group(1), runs


def test_the_readme_example_prints_what_the_readme_shows(pytester: pytest.Pytester) -> None:
    source, runs = readme_example()
    assert len(runs) == 2
    pytester.makepyfile(test_my_clean=source)
    for shown in runs:
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(shown)
