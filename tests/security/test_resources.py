"""A hostile script costs about what it is long: limits at check time, each one error at its line."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import zlib

import pytest

from conftest import tiny_png
from hostile import no_traceback, run
from storylang.syntax.parse import parse_text


def png_header(width: int, height: int) -> bytes:
    """A small PNG that claims to be `width` x `height` (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(30000, 30000), (8200, 100)])
def test_a_huge_image_is_refused_at_its_line(write_story, size):
    path = write_story('character MARA\n  reference "bomb.png"\nEXT. A - DAY\n  shot 1 close on MARA 1s\n',
                       **{"bomb.png": png_header(*size)})
    result = run("check", path)
    assert result.exit_code == 1
    no_traceback(result)
    assert 'film.story:2:13: error: reference image "bomb.png" is ' in result.output
    assert "the most is 8192 on a side" in result.output or "larger than 8192x8192" in result.output


@pytest.mark.parametrize("duration, message", [("999999999999999999999999s", "is longer than 60 minutes"),
                                               ("3601s", "is longer than 60 minutes"),
                                               ("86400001f", "is longer than 60 minutes")])
def test_durations_have_an_upper_limit_at_check_time(write_story, duration, message):
    path = write_story(f'EXT. A - DAY\n  shot 1 wide {duration}\n    action "x"\n')
    result = run("check", path)
    assert result.exit_code == 1
    no_traceback(result)
    assert f"film.story:2:15: error: a shot {message}" in result.output


def test_a_film_longer_than_six_hours_is_an_error_at_the_shot_that_passes_it(write_story):
    shots = "".join(f'  shot {i + 1} wide 3000s\n    action "x"\n' for i in range(8))
    path = write_story("EXT. A - DAY\n" + shots)
    result = run("check", path)
    assert result.exit_code == 1
    assert "film.story:16:3: error: the film is longer than 6 hours by shot 8" in result.output


def test_many_comment_lines_keep_their_positions():
    text = "EXT. A - DAY\n  shot 1 wide 1s\n" + "".join(f"    // note {i}\n" for i in range(2000)) + '    action "x"\n'
    tree, diags = parse_text(text, "f.story")
    assert not diags
    assert [(c.span.line, c.span.column, c.text) for c in tree.comments[:2]] == [(3, 5, "// note 0"), (4, 5, "// note 1")]
    last = tree.comments[-1]
    assert (last.span.line, last.text) == (2002, "// note 1999")


def test_a_long_quoted_action_parses_whole():
    text = 'EXT. A - DAY\n  shot 1 wide 1s\n    action "' + "word " * 400_000 + '"\n'
    tree, diags = parse_text(text, "f.story")
    assert not diags
    value = tree.items[0].body[0].body[0].settings[0].values[0]
    assert len(value.text) == 2_000_000


def test_a_script_over_the_size_limit_is_one_error(write_story, tmp_path):
    path = tmp_path / "big.story"
    path.write_bytes(b"// " + b"x" * (33 << 20) + b"\n")
    result = run("check", path)
    assert result.exit_code == 1
    assert "big.story:1:1: error: this script is 33 MB; the limit is 32 MB" in result.output


def _read_only(folder):
    """Bind-mount `folder` read-only onto itself; None where this machine does not allow it."""
    ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode == 0:
        return folder
    if ok:
        subprocess.run(["umount", str(folder)], capture_output=True)
    return None


@contextlib.contextmanager
def _refuse_writes(folder, monkeypatch):
    """Where no bind mount is allowed (an unprivileged CI runner): every write under `folder` fails
    as a read-only file system makes it fail (EROFS from mkdir, os.open and open), in this process."""
    import builtins
    import errno
    import os

    root = os.path.realpath(folder) + os.sep

    def refused(path) -> bool:
        return os.path.realpath(os.fspath(path)).startswith(root) or os.path.realpath(os.fspath(path)) == root[:-1]

    def erofs(path):
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and refused(file):
            raise erofs(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and refused(path):
            raise erofs(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if refused(path):
            raise erofs(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    yield


def test_a_read_only_project_can_be_checked_and_every_command_says_which_folder(write_story, monkeypatch):
    path = write_story('format 384x216 @ 24fps\nmodel "m.safetensors"\nEXT. A - DAY\n  shot 1 wide 3s\n'
                       '    narrate "Hello there."\n', **{"face.png": tiny_png()})
    project = path.parent
    mounted = _read_only(project) is not None  # a real read-only mount where this machine allows it
    with contextlib.ExitStack() as stack:
        if not mounted:
            stack.enter_context(_refuse_writes(project, monkeypatch))
        _every_command_on_a_read_only_project(path, project, mounted)


def _every_command_on_a_read_only_project(path, project, mounted: bool):
    try:
        result = run("check", path)
        assert result.exit_code == 0, result.output
        assert "1 scene, 1 shot" in result.output
        for args in (("build", path), ("board", path), ("graph", path, "--object-info", "core"),
                     ("export", path, "--format", "otio"), ("export", path, "--format", "fountain")):
            result = run(*args)
            assert result.exit_code == 1, args
            no_traceback(result)
            assert "Read-only file system" in result.output and str(project) in result.output, result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
    finally:
        if mounted:
            subprocess.run(["umount", str(project)], capture_output=True)
