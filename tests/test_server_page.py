"""The web page in a real browser: Playwright drives headless Chromium (Debian's `chromium`) against
`sdplay ui --model mini` on loopback, as a person would use it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from server_helpers import running_server

playwright = pytest.importorskip("playwright.sync_api", reason="the test extra: pip install -e '.[test,ui]'")
pytest.importorskip("gradio", reason="the ui extra: pip install -e '.[ui]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium here: apt-get install -y chromium (.ci/run does)", allow_module_level=True)

DEFORUM_FILE = Path(__file__).parent / "data" / "deforum_webui_settings.txt"
WAIT = 120_000  # ms: a busy CI machine is slow, and each check ends as soon as its condition holds


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("page"), page=True) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url + "/")
    page.wait_for_selector("#txt2img-prompt textarea", timeout=WAIT)
    yield page
    page.close()


def field(page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def status_says(page, mode: str, words: str) -> str:
    page.wait_for_function(
        "([id, words]) => document.querySelector('#' + id)?.innerText.includes(words)",
        arg=[f"{mode}-status", words],
        timeout=WAIT,
    )
    return page.inner_text(f"#{mode}-status")


def test_type_a_prompt_generate_see_the_picture_and_preview_then_send_it_to_img2img(page, tmp_path) -> None:
    field(page, "txt2img-prompt").fill("a red circle on a blue background")
    field(page, "txt2img-steps").fill("12")
    field(page, "txt2img-seed").fill("3")
    page.click("#txt2img-generate")
    assert status_says(page, "txt2img", "finished: txt2img/")
    assert page.locator("#txt2img-gallery img").count() == 1
    assert page.locator("#txt2img-preview img").count() == 1
    page.screenshot(path=str(tmp_path / "page.png"))
    if os.environ.get("SDPLAY_SCREENSHOT"):  # README's picture, made once by hand: SDPLAY_SCREENSHOT=docs/ui.png
        Image.open(tmp_path / "page.png").convert("P", palette=Image.Palette.ADAPTIVE).save(
            os.environ["SDPLAY_SCREENSHOT"], optimize=True
        )
    page.click("#txt2img-to-img2img")
    page.wait_for_selector("#img2img-init img", timeout=WAIT)
    field(page, "img2img-prompt").fill("a blue circle")
    field(page, "img2img-steps").fill("8")
    page.click("#img2img-generate")
    assert status_says(page, "img2img", "finished: img2img/")


def test_cancel_a_long_job_keeps_what_it_made(page) -> None:
    field(page, "txt2img-prompt").fill("a green triangle")
    field(page, "txt2img-steps").fill("150")
    field(page, "txt2img-num").fill("16")  # minutes of work: the cancel always comes while it runs
    page.click("#txt2img-generate")
    status_says(page, "txt2img", "step ")
    page.click("#txt2img-cancel")
    assert "pictures kept" in status_says(page, "txt2img", "cancelled")


def test_a_deforum_file_renders_three_frames(page) -> None:
    page.get_by_role("tab", name="animate").click()
    page.locator("#animate-file input[type=file]").set_input_files(str(DEFORUM_FILE))
    page.wait_for_function(  # the editor puts only its first lines on the page
        "() => document.querySelector('#animate-editor')?.innerText.includes('seed_behavior')", timeout=WAIT
    )
    field(page, "animate-max-frames").fill("3")
    page.click("#animate-generate")
    assert status_says(page, "animate", "finished: animate/")
    assert page.locator("#animate-gallery img").count() == 3


def test_dropping_a_png_restores_its_settings(page, tmp_path) -> None:
    picture = tmp_path / "made elsewhere.png"
    info = PngInfo()
    info.add_text(
        "parameters", "a yellow star\nNegative prompt: blurry\nSteps: 17, CFG scale: 6.5, Seed: 42, Size: 64x64"
    )
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(picture, pnginfo=info)
    page.get_by_role("tab", name="history").click()
    page.locator("#history-drop input[type=file]").set_input_files(str(picture))
    page.wait_for_function(
        "() => document.querySelector('#txt2img-prompt textarea')?.value === 'a yellow star'", timeout=WAIT
    )
    assert field(page, "txt2img-steps").input_value() == "17"
    assert field(page, "txt2img-seed").input_value() == "42"
