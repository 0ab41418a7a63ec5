"""The write edge: no-ops touch nothing; writes are atomic, locked, compare-and-swap, backed up."""

from __future__ import annotations

import errno
import os
import random
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.errors import TargetError
from syncd.sync import store
from syncd.sync.backups import backup_dir_for
from syncd.sync.store import (
    atomic_write_bytes,
    clean_stale_temps,
    read_only_reason,
    read_target,
    sha256_bytes,
    write_target,
)

HERE = Path(__file__).resolve().parent
ORIGINAL = '{\n  // my providers\n  "provider": {}\n}\n'


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".syncd-" in p.name)


def add_line(text: str) -> str:
    return text + "// synced\n"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "opencode.jsonc"
    path.write_text(ORIGINAL, encoding="utf-8")
    return path


@pytest.mark.parametrize("transform", [lambda t: None, lambda t: t], ids=["none", "same-text"])
def test_nothing_to_do_leaves_bytes_mtime_and_inode(target: Path, state: Path, transform) -> None:
    before = os.stat(target)
    result = write_target(target, transform, state_dir=state)
    after = os.stat(target)
    assert not result.changed and result.backup is None
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino, before.st_mtime_ns, before.st_size)
    assert result.sha256 == sha256_bytes(ORIGINAL.encode())
    assert not (state / "backups").exists()


def test_write_replaces_text_reports_hash_and_backs_up_old_bytes(target: Path, state: Path) -> None:
    result = write_target(target, add_line, state_dir=state)
    on_disk = target.read_bytes()
    assert result.changed and result.attempts == 1
    assert on_disk.decode() == add_line(ORIGINAL) == result.new_text
    assert result.old_text == ORIGINAL
    assert result.sha256 == sha256_bytes(on_disk)
    assert result.backup is not None and result.backup.read_text(encoding="utf-8") == ORIGINAL
    assert result.backup.parent == backup_dir_for(target.resolve(), state)
    assert result.backup.suffix == ".jsonc"
    assert stat.S_IMODE(result.backup.stat().st_mode) == 0o600
    for folder in (state, state / "backups", result.backup.parent, state / "locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert temps(target.parent) == []


def test_mode_bits_are_kept(target: Path, state: Path) -> None:
    target.chmod(0o640)
    write_target(target, add_line, state_dir=state)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_target_gets_mode_0644_whatever_the_umask(tmp_path: Path, state: Path) -> None:
    path = tmp_path / "opencode.json"
    old_umask = os.umask(0o077)
    try:
        result = write_target(path, lambda t: t + "{}\n", state_dir=state)
    finally:
        os.umask(old_umask)
    assert result.changed and result.backup is None and result.old_text == ""
    assert path.read_text(encoding="utf-8") == "{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == store.NEW_TARGET_MODE == 0o644


def test_missing_target_reads_as_absent(tmp_path: Path) -> None:
    snap = read_target(tmp_path / "nope.json")
    assert not snap.exists and snap.text == "" and snap.data == b""


def test_symlinked_target_stays_a_link_and_its_real_file_changes(
    tmp_path: Path, state: Path
) -> None:
    dotfiles = tmp_path / "dotfiles" / "opencode"
    dotfiles.mkdir(parents=True)
    real = dotfiles / "opencode.jsonc"
    real.write_text(ORIGINAL, encoding="utf-8")
    config = tmp_path / "config"
    config.mkdir()
    link = config / "opencode.jsonc"
    link.symlink_to(os.path.relpath(real, config))  # stow makes relative links

    snap = read_target(link)
    assert snap.path == link and snap.real_path == real.resolve()
    write_target(link, add_line, state_dir=state)

    assert link.is_symlink() and os.readlink(link) == os.path.relpath(real, config)
    assert real.read_text(encoding="utf-8") == add_line(ORIGINAL)
    assert temps(config) == [] and temps(dotfiles) == []


def test_read_only_file_is_a_target_error_and_leaves_nothing(target: Path, state: Path) -> None:
    target.chmod(0o444)
    with pytest.raises(TargetError, match="read-only.*syncd cannot update it") as err:
        write_target(target, add_line, state_dir=state)
    assert "\n" not in str(err.value)
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert temps(target.parent) == []
    assert not (state / "backups").exists()


def test_read_only_folder_is_a_target_error_and_leaves_nothing(target: Path, state: Path) -> None:
    target.parent.chmod(0o555)
    try:
        with pytest.raises(TargetError, match="read-only.*not writable"):
            write_target(target, add_line, state_dir=state)
        assert target.read_text(encoding="utf-8") == ORIGINAL
        assert temps(target.parent) == []
    finally:
        target.parent.chmod(0o755)


def test_a_file_renamed_away_by_a_vim_style_save_is_not_read_only(target: Path) -> None:
    snap = read_target(target)
    target.rename(target.with_name(target.name + "~"))  # the save's first step; the new file is next
    assert read_only_reason(snap) is None  # writable a moment ago, in a writable folder
    target.with_name(target.name + "~").chmod(0o444)
    target.with_name(target.name + "~").rename(target)
    assert "has mode 0444" in (read_only_reason(read_target(target)) or "")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_permission_errors_from_the_os_say_read_only(
    target: Path, state: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # /nix/store is a read-only mount: creating the temp file is where that shows.
    real_write_temp = store.write_temp

    def refuse(directory: Path, *args: object) -> Path:
        if directory == target.parent.resolve():
            raise OSError(code, os.strerror(code))
        return real_write_temp(directory, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "write_temp", refuse)
    with pytest.raises(TargetError, match="is read-only: .*; syncd cannot update it"):
        write_target(target, add_line, state_dir=state)
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert not list((state / "backups").rglob("*.jsonc"))


@pytest.mark.parametrize("seam", ["write", "fsync"])
def test_full_disk_leaves_target_untouched_and_no_temp(
    target: Path, state: Path, monkeypatch: pytest.MonkeyPatch, seam: str
) -> None:
    real_call = getattr(os, seam)

    def full_for_our_temps(fd: int, *args: object) -> object:
        if ".syncd-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_call(fd, *args)

    # Backups are written with the same primitive; make one first so only the target's temp fails.
    monkeypatch.setattr(store, "backup", lambda real, data, state_dir: None)
    monkeypatch.setattr(os, seam, full_for_our_temps)
    with pytest.raises(TargetError, match="no space left on device") as err:
        write_target(target, add_line, state_dir=state)
    monkeypatch.undo()
    assert "\n" not in str(err.value)
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert temps(target.parent) == []


def test_failing_backup_blocks_the_write(target: Path, state: Path) -> None:
    state.mkdir()
    (state / "backups").write_text("not a folder")
    with pytest.raises(TargetError, match="cannot back it up"):
        write_target(target, add_line, state_dir=state)
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert temps(target.parent) == []


def test_concurrent_edit_is_recomputed_on_and_survives(target: Path, state: Path) -> None:
    seen: list[str] = []

    def editor_saves_during_first_call(text: str) -> str:
        seen.append(text)
        if len(seen) == 1:  # OpenCode inserts "$schema" while we compute
            target.write_text(text.replace("{\n", '{\n  "$schema": "x",\n', 1), encoding="utf-8")
        return add_line(text)

    result = write_target(target, editor_saves_during_first_call, state_dir=state)
    edited = ORIGINAL.replace("{\n", '{\n  "$schema": "x",\n', 1)
    assert seen == [ORIGINAL, edited]
    assert result.attempts == 2 and result.old_text == edited
    assert target.read_text(encoding="utf-8") == add_line(edited)
    assert result.backup is not None and result.backup.read_text(encoding="utf-8") == edited
    assert len(list(result.backup.parent.iterdir())) == 1  # the abandoned attempt's backup is gone
    assert temps(target.parent) == []


def test_file_that_never_settles_exhausts_retries(target: Path, state: Path) -> None:
    calls: list[int] = []

    def always_raced(text: str) -> str:
        calls.append(1)
        target.write_text(f"// edit {len(calls)}\n" + ORIGINAL, encoding="utf-8")
        return add_line(text)

    with pytest.raises(TargetError, match="changed while syncing.*will retry"):
        write_target(target, always_raced, state_dir=state, retries=3)
    assert len(calls) == 4
    assert target.read_text(encoding="utf-8") == f"// edit {len(calls)}\n" + ORIGINAL
    assert temps(target.parent) == []


def test_transform_error_propagates_and_leaves_nothing(target: Path, state: Path) -> None:
    class Boom(Exception):
        pass

    def broken(text: str) -> str:
        raise Boom("parse error at 3:4")

    before = os.stat(target)
    with pytest.raises(Boom):
        write_target(target, broken, state_dir=state)
    assert os.stat(target).st_mtime_ns == before.st_mtime_ns
    assert target.read_text(encoding="utf-8") == ORIGINAL
    assert temps(target.parent) == [] and not (state / "backups").exists()


def test_backups_keep_the_last_twenty_in_order(target: Path, state: Path) -> None:
    versions = [ORIGINAL]
    for _ in range(25):
        result = write_target(target, add_line, state_dir=state)
        versions.append(result.new_text)
    assert result.backup is not None
    kept = sorted(result.backup.parent.iterdir())
    assert [p.read_text(encoding="utf-8") for p in kept] == versions[-21:-1]


def test_bom_is_kept_in_text_and_on_disk(target: Path, state: Path) -> None:
    target.write_bytes(b"\xef\xbb\xbf" + ORIGINAL.encode())
    assert read_target(target).text.startswith("\ufeff")
    write_target(target, add_line, state_dir=state)
    assert target.read_bytes() == b"\xef\xbb\xbf" + add_line(ORIGINAL).encode()


def test_undecodable_bytes_are_a_one_line_target_error(target: Path) -> None:
    target.write_bytes(b'{"name": "caf\xe9"}\n')
    with pytest.raises(TargetError, match="not UTF-8") as err:
        read_target(target)
    assert "\n" not in str(err.value) and str(target) in str(err.value)


def test_stale_temps_are_cleaned_and_other_files_kept(target: Path, state: Path) -> None:
    ours = target.parent / f".{target.name}.syncd-deadbeef0001.tmp"
    ours.write_text("half")
    editor_swap = target.parent / f".{target.name}.swp"
    editor_swap.write_text("vim")
    write_target(target, add_line, state_dir=state)  # cleans under the lock before writing
    assert not ours.exists() and editor_swap.exists()
    ours.write_text("half")
    assert clean_stale_temps(target.parent, target.name) == 1
    assert clean_stale_temps(target.parent, target.name) == 0 and editor_swap.exists()


def test_atomic_write_bytes_sets_mode_and_leaves_no_temp_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    atomic_write_bytes(path, b"{}", mode=0o600)
    assert path.read_bytes() == b"{}" and stat.S_IMODE(path.stat().st_mode) == 0o600

    def fail_replace(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b'{"v": 2}', mode=0o600)
    monkeypatch.undo()
    assert path.read_bytes() == b"{}" and temps(tmp_path) == []


def test_sigkill_mid_write_leaves_old_or_new_text_never_a_mix(tmp_path: Path, state: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    target = folder / "opencode.json"
    # Different sizes, so a torn or truncated file cannot pass for either.
    text_a = "{\n" + "".join(f'  "a{i}": {i},\n' for i in range(3000)) + '  "end": 0\n}\n'
    text_b = "{\n" + "".join(f'  "b{i}": "{i * 7}",\n' for i in range(7000)) + '  "end": 1\n}\n'
    (tmp_path / "a.txt").write_text(text_a, encoding="utf-8")
    (tmp_path / "b.txt").write_text(text_b, encoding="utf-8")
    target.write_text(text_a, encoding="utf-8")
    rng = random.Random(20240521)
    left_behind = 0
    for _ in range(50):
        child = subprocess.Popen(
            [sys.executable, str(HERE / "crash_writer.py"), str(target), str(state),
             str(tmp_path / "a.txt"), str(tmp_path / "b.txt")],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            os.sched_yield()
            deadline_ms = rng.uniform(0, 15)
            subprocess.run(["sleep", f"{deadline_ms / 1000:.4f}"], check=True)
            assert child.poll() is None  # killed while writing, not after it gave up
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()  # type: ignore[union-attr]
        assert target.read_text(encoding="utf-8") in (text_a, text_b)
        left_behind += clean_stale_temps(folder, target.name)
        assert temps(folder) == []
    # The next ordinary write also sweeps the backups folder of torn backup temps.
    result = write_target(target, lambda t: text_a if t == text_b else text_b, state_dir=state)
    assert result.backup is not None and temps(result.backup.parent) == []
    print(f"temp files left by 50 kills: {left_behind}")


def test_target_in_a_missing_folder_is_a_target_error(tmp_path: Path, state: Path) -> None:
    path = tmp_path / "no-such-folder" / "opencode.json"
    with pytest.raises(TargetError, match="folder does not exist"):
        write_target(path, lambda t: "{}\n", state_dir=state)
    assert not path.parent.exists()
