"""The lossless write path: an editor's save injected at each step of a write is never lost."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from test_store import ORIGINAL, state, target, temps  # noqa: F401  (shared fixtures)

from syncd.errors import TargetError
from syncd.sync import store, swap
from syncd.sync.backups import backup_dir_for
from syncd.sync.store import Method, Step, clean_stale_temps, write_target

SYNCED = "// synced\n"
Save = Callable[[Path, str], None]


def add_line(text: str) -> str:
    return text + SYNCED


def save_by_rename(real: Path, text: str) -> None:
    """vim's and OpenCode's way: a sibling file renamed over the target (a new inode)."""
    tmp = real.with_name(f".{real.name}.swp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, real)


def save_in_place(real: Path, text: str) -> None:
    """nano's way: truncate the file and write into the same inode."""
    with open(real, "r+", encoding="utf-8") as f:
        f.truncate(0)
        f.write(text)


SAVES: dict[str, Save] = {"rename": save_by_rename, "in-place": save_in_place}


def edited(text: str, mark: str) -> str:
    """The user's own change: a comment line right after the first brace."""
    return text.replace("{\n", f"{{\n  // {mark}\n", 1)


def backups(state: Path, target: Path) -> list[str]:
    folder = backup_dir_for(target.resolve(), state)
    return [p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())] if folder.exists() else []


@pytest.fixture
def no_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system or file system without renameat2/renamex_np (NFS, SMB, FAT, old kernels)."""
    monkeypatch.setattr(swap, "exchange", lambda a, b: False)
    monkeypatch.setattr(swap, "rename_noreplace", lambda a, b: False)


def save_once_at(step: Step, save: Save, mark: str = "edited by hand") -> tuple[
        Callable[[Step, Path], None], list[str]]:
    """A write-path hook: at the first `step`, the editor reads the file as it is and saves its edit."""
    saved: list[str] = []

    def hook(at: Step, real: Path) -> None:
        if at is step and not saved:
            saved.append(edited(real.read_text(encoding="utf-8"), mark))
            save(real, saved[-1])

    return hook, saved


SINGLE_SAVE_STEPS = [s for s in Step if s is not Step.UNDOING]  # UNDOING needs an earlier save


@pytest.mark.parametrize("style", SAVES)
@pytest.mark.parametrize("step", SINGLE_SAVE_STEPS, ids=lambda s: s.value)
def test_an_editor_save_at_any_step_of_a_write_is_never_lost(
    target: Path, state: Path, step: Step, style: str
) -> None:
    hook, saved = save_once_at(step, SAVES[style])
    result = write_target(target, add_line, state_dir=state, on_step=hook)
    final = target.read_text(encoding="utf-8")
    assert saved, f"the write never reached {step}"
    assert "// edited by hand" in final  # the user's edit is in the file...
    assert final.endswith(SYNCED)  # ...and so is syncd's change
    assert result.changed and result.method is Method.EXCHANGE
    assert temps(target.parent) == []
    if step in (Step.SWAPPED, Step.VERIFIED, Step.DONE):  # on top of syncd's write: it read its text
        assert final == saved[0] and result.attempts == 1
    else:  # saved on top of what syncd planned from: syncd planned again from the save
        assert final == add_line(saved[0]) and result.attempts == 2 and result.old_text == saved[0]


@pytest.mark.parametrize("style", SAVES)
def test_a_save_in_the_microseconds_before_the_swap_is_swapped_back_and_planned_from(
    target: Path, state: Path, style: str
) -> None:
    seen: list[str] = []
    hook, _ = save_once_at(Step.CHECKED, SAVES[style])

    def transform(text: str) -> str:
        seen.append(text)
        return add_line(text)

    steps: list[Step] = []
    write_target(target, transform, state_dir=state,
                 on_step=lambda at, real: (steps.append(at), hook(at, real)))
    assert Step.UNDOING in steps  # the swap handed back the save, not what syncd planned from
    assert seen == [ORIGINAL, edited(ORIGINAL, "edited by hand")]
    assert target.read_text(encoding="utf-8") == add_line(edited(ORIGINAL, "edited by hand"))
    # the backup holds what the successful write replaced: the user's save
    assert backups(state, target) == [edited(ORIGINAL, "edited by hand")]


@pytest.mark.parametrize("style", SAVES)
def test_a_second_save_during_the_swap_back_wins_and_the_first_goes_to_the_backups(
    target: Path, state: Path, style: str
) -> None:
    # The one window left: after a save lands just before the swap, syncd's text is visible
    # until the swap back. An editor that reads it then and saves on top makes the newest save;
    # the first one is kept in the backups, never just dropped.
    first, _ = save_once_at(Step.CHECKED, SAVES[style], "first save")
    second, saved = save_once_at(Step.UNDOING, SAVES[style], "second save")
    write_target(target, add_line, state_dir=state,
                 on_step=lambda at, real: (first(at, real), second(at, real)))
    final = target.read_text(encoding="utf-8")
    assert final == add_line(saved[0]) and "// second save" in final
    assert edited(ORIGINAL, "first save") in backups(state, target)
    assert temps(target.parent) == []


def in_place_save_around_the_swap(
    text: str, writes_at: Step, *, truncates_on_open: bool
) -> Callable[[Step, Path], None]:
    """An editor that opens the target before the swap (Step.CHECKED; emptying it then, or just
    before it writes) and writes `text` at `writes_at`: into the file that came out of the swap."""
    opened: list[int] = []

    def hook(at: Step, real: Path) -> None:
        if at is Step.CHECKED:
            opened.append(os.open(real, os.O_WRONLY | (os.O_TRUNC if truncates_on_open else 0)))
        elif at is writes_at and opened:
            if not truncates_on_open:
                os.ftruncate(opened[0], 0)
            os.write(opened[0], text.encode())
            os.close(opened.pop())

    return hook


def test_an_in_place_save_straddling_the_swap_lands_in_what_came_out_and_is_kept(
    target: Path, state: Path
) -> None:
    hook = in_place_save_around_the_swap(edited(ORIGINAL, "straddling"), Step.SWAPPED,
                                         truncates_on_open=True)
    write_target(target, add_line, state_dir=state, on_step=hook)
    assert target.read_text(encoding="utf-8") == add_line(edited(ORIGINAL, "straddling"))


def test_an_in_place_save_landing_just_after_the_check_of_what_came_out_is_kept(
    target: Path, state: Path
) -> None:
    hook = in_place_save_around_the_swap(edited(ORIGINAL, "late"), Step.VERIFIED,
                                         truncates_on_open=False)
    write_target(target, add_line, state_dir=state, on_step=hook)
    assert target.read_text(encoding="utf-8") == add_line(edited(ORIGINAL, "late"))


@pytest.mark.parametrize("style", SAVES)
def test_a_target_created_by_someone_else_meanwhile_is_planned_from_not_clobbered(
    tmp_path: Path, state: Path, style: str
) -> None:
    path = tmp_path / "opencode.json"

    def hook(at: Step, real: Path) -> None:
        if at is Step.CHECKED and not real.exists():
            real.write_text('{ "theme": "mine" }\n', encoding="utf-8")

    result = write_target(path, lambda t: (t or "{}\n") + SYNCED, state_dir=state, on_step=hook)
    assert path.read_text(encoding="utf-8") == '{ "theme": "mine" }\n' + SYNCED
    assert result.attempts == 2 and result.method is Method.EXCHANGE


def test_a_new_target_is_created_without_replacing_anything(tmp_path: Path, state: Path) -> None:
    result = write_target(tmp_path / "opencode.json", lambda t: "{}\n", state_dir=state)
    assert result.method is Method.CREATE and temps(tmp_path) == []


@pytest.mark.parametrize("style", SAVES)
@pytest.mark.parametrize("step", [s for s in SINGLE_SAVE_STEPS if s not in (
    Step.CHECKED, Step.SWAPPED, Step.VERIFIED, Step.DONE)], ids=lambda s: s.value)
def test_without_a_swap_a_save_before_the_last_check_is_still_planned_from(
    target: Path, state: Path, no_swap: None, step: Step, style: str
) -> None:
    hook, saved = save_once_at(step, SAVES[style])
    result = write_target(target, add_line, state_dir=state, on_step=hook)
    assert result.method is Method.RENAME
    assert target.read_text(encoding="utf-8") == add_line(saved[0])


def test_without_a_swap_the_window_is_between_the_last_check_and_the_rename(
    target: Path, state: Path, no_swap: None
) -> None:
    # Documented, not wanted: where neither renameat2 nor renamex_np works, a save landing in
    # the microseconds between the last check and the rename is replaced.
    hook, saved = save_once_at(Step.CHECKED, save_by_rename)
    result = write_target(target, add_line, state_dir=state, on_step=hook)
    assert saved and result.method is Method.RENAME
    assert target.read_text(encoding="utf-8") == add_line(ORIGINAL)


class Killed(BaseException):
    """The write dies at the worst moment; what cleanup still runs must not drop the user's save."""


def test_a_writer_killed_before_its_swap_back_gets_the_save_put_back_by_the_next_write(
    target: Path, state: Path
) -> None:
    hook, saved = save_once_at(Step.CHECKED, save_by_rename)

    def die_before_swapping_back(at: Step, real: Path) -> None:
        hook(at, real)
        if at is Step.UNDOING:
            raise Killed

    with pytest.raises(Killed):
        write_target(target, add_line, state_dir=state, on_step=die_before_swapping_back)
    assert target.read_text(encoding="utf-8") == add_line(ORIGINAL)  # syncd's text, for now
    assert len(temps(target.parent)) == 1  # the user's save, under syncd's temp name
    assert clean_stale_temps(target.parent, target.name) == 1
    assert target.read_text(encoding="utf-8") == saved[0]
    write_target(target, add_line, state_dir=state)
    assert target.read_text(encoding="utf-8") == add_line(saved[0])


KILL_AT = """
import os, sys
from pathlib import Path
from syncd.sync.store import Step, write_target

def die(at, real):
    if at.value == sys.argv[3]:
        os._exit(9)  # like SIGKILL: no cleanup runs

write_target(Path(sys.argv[1]), lambda t: t + "// synced\\n", state_dir=Path(sys.argv[2]),
             on_step=die)
"""


@pytest.mark.parametrize("step", [Step.STAGED, Step.SWAPPED, Step.DONE], ids=lambda s: s.value)
def test_temps_left_by_a_kill_are_removed_and_the_target_is_old_or_new(
    target: Path, state: Path, step: Step
) -> None:
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", KILL_AT, str(target), str(state), step.value],
                         check=False)
    assert run.returncode == 9
    before = target.read_text(encoding="utf-8")
    assert before == (ORIGINAL if step is Step.STAGED else add_line(ORIGINAL))
    assert len(temps(target.parent)) == 1
    assert clean_stale_temps(target.parent, target.name) == 1
    assert target.read_text(encoding="utf-8") == before and temps(target.parent) == []


def test_a_hard_linked_target_is_refused_with_what_to_do(target: Path, state: Path) -> None:
    other = target.parent / "other-name.jsonc"
    os.link(target, other)
    with pytest.raises(TargetError, match=r"has 2 hard links.*ln -sf") as err:
        write_target(target, add_line, state_dir=state)
    assert "\n" not in str(err.value)
    assert target.read_text(encoding="utf-8") == ORIGINAL and os.stat(target).st_nlink == 2
    assert temps(target.parent) == [] and backups(state, target) == []


def test_renameat2_works_through_the_raw_syscall_when_libc_lacks_the_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctypes
    import platform
    import sys

    if not sys.platform.startswith("linux") or platform.machine().lower() not in swap._SYSCALL_NR:
        pytest.skip("the raw renameat2 syscall is a Linux fallback")
    raw = swap._linux_call(ctypes.CDLL(None, use_errno=True), use_wrapper=False)
    assert raw is not None
    monkeypatch.setattr(swap, "_call", lambda: (raw, 2, 1))
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    assert swap.exchange(a, b)
    assert (a.read_text(), b.read_text()) == ("B", "A")
    with pytest.raises(FileExistsError):
        swap.rename_noreplace(a, b)


def test_a_file_system_that_refuses_the_swap_falls_back_to_a_rename(
    target: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno as e

    def refuse(src: bytes, dst: bytes, flags: int) -> int:
        import ctypes

        ctypes.set_errno(e.EINVAL)  # what NFS, SMB and FAT answer to RENAME_EXCHANGE
        return -1

    monkeypatch.setattr(swap, "_call", lambda: (refuse, 2, 1))
    result = write_target(target, add_line, state_dir=state)
    assert result.method is Method.RENAME
    assert target.read_text(encoding="utf-8") == add_line(ORIGINAL)
    assert store.read_target(target).links == 1
