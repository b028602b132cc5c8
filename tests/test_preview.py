"""`storyc watch FILE --serve`: the live preview page, served on 127.0.0.1 and tested in a real
headless Chromium (Debian's, driven by Playwright): the film plays with its length, an edit
updates the page and the video without a reload, a panel click seeks to its shot, a failing
edit shows its error at its line; and nothing outside the build folder can be fetched."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

FILM = '''format 384x216 @ 24fps
narrator "en-us"
EXT. HARBOUR - DAY
  shot 1 wide 2s
    action "boats at anchor"
  shot 2 close 1s
    action "a rope on the quay"
  shot 3 medium 2s
    action "gulls over the water"
'''


@pytest.fixture
def watching(tmp_path):
    """`storyc watch film.story --serve --port 0` in a process of its own; yields (url, script)."""
    yield from watch(tmp_path, FILM)


def watch(tmp_path, film, *options):
    script = tmp_path / "film.story"
    script.write_text(film)
    (tmp_path / ".git").mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "watch", "film.story", "--serve", "--port", "0",
                             *options],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = re.match(r"preview: (http://127\.0\.0\.1:\d+/)", line)
        url = m.group(1) if m else None
    assert url, "the watch never said where its page is"
    try:
        yield url, script
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def state(url: str) -> dict:
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/state")
    return json.loads(conn.getresponse().read())


def wait_for(check, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("waited in vain")


def raw_get(url: str, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)  # sent as written: no client normalises it
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    return r.status, r.read(), dict(r.getheaders())


def test_panels_are_queued_then_rendering_then_rendered_on_comfyui(tmp_path):
    """Shots a rebuild renders on a ComfyUI test server: each panel is queued until the server
    starts it, rendering with its node and step, then rendered."""
    sys.path.insert(0, str(ROOT / "tests" / "comfy"))
    from fake_server import FakeComfy

    comfy = FakeComfy(step_delay=0.08).start()
    try:
        film = 'model "dreamshaper_8.safetensors"  steps 8\n' + FILM
        for url, script in watch(tmp_path, film, "--comfy", comfy.url):
            first = wait_for(lambda: (s := state(url))["film_version"] >= 1 and s)
            assert [p["state"] for p in first["panels"]] == ["rendered"] * 3
            script.write_text(film.replace("a rope", "a wet rope").replace("gulls over", "gulls low over"))
            seen = set()

            def rebuilt():
                s = state(url)
                seen.update((p["shot"], p["state"]) for p in s["panels"])
                return s["film_version"] >= 2 and s

            last = wait_for(rebuilt)
            # one waits in the server's queue while the other renders (the first one's own wait
            # may be too short for a poll to see)
            assert {("2", "rendering"), ("3", "rendering")} <= seen
            assert ("2", "queued") in seen or ("3", "queued") in seen
            assert ("1", "queued") not in seen and ("1", "rendering") not in seen  # unchanged: from the cache
            assert [p["state"] for p in last["panels"]] == ["rendered"] * 3
    finally:
        comfy.stop()


def test_the_page_serves_the_film_and_nothing_outside_the_build(watching):
    url, script = watching
    wait_for(lambda: state(url)["film_version"] >= 1)
    status, body, headers = raw_get(url, "/film.mp4", {"Range": "bytes=0-99"})
    assert status == 206 and len(body) == 100 and headers["Content-Range"].startswith("bytes 0-99/")
    status, body, _ = raw_get(url, "/film.mp4")
    assert status == 200 and body[4:8] == b"ftyp"
    assert raw_get(url, "/panel/0")[0] == 200
    for hostile in ("/../film.story", "/%2e%2e/film.story", "/panel/../../film.story", "/panel/%2e%2e%2ffilm.story",
                    "/film.mp4/../../film.story", "//etc/passwd", "/panel/-1", "/panel/99999", "/build/../film.story",
                    "/..%2f..%2fetc%2fpasswd", "/film.story"):
        status, body, _ = raw_get(url, hostile)
        assert status == 404, hostile
        assert b"High water" not in body and b"format 384x216" not in body
    assert raw_get(url, "/film.mp4", {"Range": "bytes=999999999-"})[0] == 416


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_page_in_a_browser_follows_the_edits(watching, tmp_path):
    from playwright.sync_api import sync_playwright

    url, script = watching
    wait_for(lambda: state(url)["film_version"] >= 1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_context(bypass_csp=True).new_page()  # the page's CSP forbids eval, which the test uses
        page.goto(url)
        page.evaluate("window.sameDocument = true")  # gone if the page ever reloads
        page.wait_for_function("document.getElementById('film').duration > 0")
        assert abs(page.evaluate("document.getElementById('film').duration") - 5.0) < 0.1
        assert page.locator(".panel").count() == 3 and page.locator(".panel.card").count() == 3
        # an edit: shot 2 grows to 3 s; the video follows without a reload
        script.write_text(FILM.replace("shot 2 close 1s", "shot 2 close 3s"))
        page.wait_for_function("Math.abs(document.getElementById('film').duration - 7.0) < 0.1", timeout=90_000)
        assert page.evaluate("window.sameDocument") is True
        assert "shot 2" in page.locator("#last").inner_text()
        # a panel seeks the film to its shot's start (shot 3 starts at 5 s)
        page.locator(".panel").nth(2).click()
        page.wait_for_function("Math.abs(document.getElementById('film').currentTime - 5.0) < 0.1")
        page.wait_for_selector(".panel.current[data-shot='3']")
        page.screenshot(path=str(tmp_path / "preview.png"))
        # a failing edit: the error at its line, and the film before it stays
        script.write_text(FILM.replace('action "gulls over the water"', 'action "gulls over the water'))
        page.wait_for_selector("#problems li")
        problem = page.locator("#problems li").first.inner_text()
        assert problem.startswith("film.story:9:") and page.evaluate("window.sameDocument") is True
        assert abs(page.evaluate("document.getElementById('film').duration") - 7.0) < 0.1
        browser.close()
