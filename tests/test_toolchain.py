"""Finding ffmpeg: its version is asked once per binary and remembered in the user's cache folder."""

import os
import stat

from storylang import toolchain


def fake_ffmpeg(path, version: str, calls) -> str:
    path.write_text(f'#!/bin/sh\necho run >> "{calls}"\necho "ffmpeg version {version} Copyright"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_binary_is_asked_its_version_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = tmp_path / "calls.txt"
    exe = fake_ffmpeg(tmp_path / "ffmpeg", "7.1-test", calls)
    assert toolchain._version(exe) == "7.1-test"
    assert toolchain._version(exe) == "7.1-test"
    assert calls.read_text().count("run") == 1
    assert (tmp_path / "cache" / "storylang" / "ffmpeg-versions.json").is_file()


def test_a_replaced_binary_is_asked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = tmp_path / "calls.txt"
    exe = fake_ffmpeg(tmp_path / "ffmpeg", "7.1-test", calls)
    assert toolchain._version(exe) == "7.1-test"
    fake_ffmpeg(tmp_path / "ffmpeg", "8.0-newer", calls)
    os.utime(exe, ns=(1, 1))  # a new modification time even on a coarse clock
    assert toolchain._version(exe) == "8.0-newer"
    assert calls.read_text().count("run") == 2


def test_a_damaged_memo_or_no_cache_folder_only_costs_a_run(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    exe = fake_ffmpeg(tmp_path / "ffmpeg", "7.1-test", calls)
    memo = tmp_path / "cache" / "storylang" / "ffmpeg-versions.json"
    memo.parent.mkdir(parents=True)
    memo.write_text("{not json")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert toolchain._version(exe) == "7.1-test"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    assert toolchain._version(exe) == "7.1-test"
    assert toolchain._version(str(tmp_path / "missing")) == ""


def test_the_bundled_ffmpeg_is_the_one_the_package_would_name(monkeypatch):
    import imageio_ffmpeg

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    assert os.path.samefile(toolchain._bundled_ffmpeg(), imageio_ffmpeg.get_ffmpeg_exe())
