"""scripts/terminal_picture.py, which pictures `wandb leet` for the README: capture and drawing."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from scripts import terminal_picture

# Red bold text, a cell with a blue background, and a full braille cell (all eight dots), then wait to be
# told to quit, as a full-screen program does.
PROGRAM = (
    "import sys\n"
    "sys.stdout.write('\\x1b[1;31mred\\x1b[0m \\x1b[44m \\x1b[0m \\u28ff done\\n')\n"
    "sys.stdout.flush()\n"
    "sys.stdin.read(1)\n"
)


@pytest.fixture(scope="module")
def screen():
    return terminal_picture.capture(
        [sys.executable, "-c", PROGRAM],
        40,
        5,
        ready=lambda lines: "done" in lines[0],
        settle=0.2,
        timeout=30,
        quit_keys=b"q\n",  # the terminal is in line mode: the program reads a line
    )


def test_capture_keeps_the_text_and_its_attributes(screen):
    assert screen.display[0].startswith("red   \u28ff done")
    red = screen.buffer[0][0]
    assert (red.data, red.fg, red.bold) == ("r", "red", True)
    assert screen.buffer[0][4].bg == "blue"
    assert screen.buffer[0][3].bg == "default"


def test_capture_gives_up_on_a_screen_that_never_comes():
    with pytest.raises(TimeoutError, match="never showed"):
        terminal_picture.capture(
            [sys.executable, "-c", "print('something else'); input()"],
            40,
            5,
            ready=lambda lines: False,
            timeout=2,
            quit_keys=b"\n",
        )


def test_render_draws_colours_and_braille_dots(screen, tmp_path):
    path = tmp_path / "screen.png"
    terminal_picture.render(screen, path, font_size=14, padding=10)
    image = Image.open(path).convert("RGB")
    cell_width = (image.width - 20) // 40
    cell_height = (image.height - 20) // 5
    assert image.width == 40 * cell_width + 20 and image.height == 5 * cell_height + 20

    def cell_colours(column: int) -> set[tuple[int, int, int]]:
        left, top = 10 + column * cell_width, 10
        box = image.crop((left, top, left + cell_width, top + cell_height))
        return {colour for _, colour in box.getcolors(maxcolors=10_000)}

    assert terminal_picture.NAMED_COLOURS["red"] in cell_colours(0)
    assert cell_colours(4) == {terminal_picture.NAMED_COLOURS["blue"]}
    assert cell_colours(3) == {terminal_picture.BACKGROUND}
    # All eight braille dots drawn: foreground in each quarter of the cell's height.
    braille = image.crop((10 + 6 * cell_width, 10, 10 + 7 * cell_width, 10 + cell_height))
    for quarter in range(4):
        rows = braille.crop((0, quarter * cell_height // 4, cell_width, (quarter + 1) * cell_height // 4))
        assert terminal_picture.FOREGROUND in {colour for _, colour in rows.getcolors(maxcolors=10_000)}
