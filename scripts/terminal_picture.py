"""Picture a terminal program: run it in a pseudo-terminal, keep its screen with pyte, draw it with Pillow.

Used by `make_images.py` for the README's view of `wandb leet`, a full-screen terminal UI that only draws
itself on a terminal. pyte plays the terminal (and answers the program's cursor and device queries); the
screen it holds, character by character with colours and weight, is drawn in DejaVu Sans Mono, the font
matplotlib ships, which has the box-drawing characters terminal UIs are made of. Braille characters, which
terminal charts plot with (2 x 4 dots to a cell), are missing from it and are drawn dot by dot instead, as
several terminal emulators do.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import pyte
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (24, 24, 27)
FOREGROUND = (212, 212, 216)
# xterm's 16 colours, for programs that name colours instead of giving RGB.
NAMED_COLOURS = {
    "black": (0, 0, 0),
    "red": (205, 49, 49),
    "green": (13, 188, 121),
    "brown": (229, 229, 16),
    "blue": (36, 114, 200),
    "magenta": (188, 63, 188),
    "cyan": (17, 168, 205),
    "white": (229, 229, 229),
    "brightblack": (102, 102, 102),
    "brightred": (241, 76, 76),
    "brightgreen": (35, 209, 139),
    "brightbrown": (245, 245, 67),
    "brightblue": (59, 142, 234),
    "brightmagenta": (214, 112, 214),
    "brightcyan": (41, 184, 219),
    "brightwhite": (255, 255, 255),
}


class _AnsweringScreen(pyte.Screen):
    """A pyte screen that writes its answers to status queries back to the program."""

    def __init__(self, columns: int, lines: int, answer: Callable[[bytes], None]) -> None:
        super().__init__(columns, lines)
        self._answer = answer

    def write_process_input(self, data: str) -> None:
        self._answer(data.encode())


def capture(
    command: Sequence[str],
    columns: int,
    lines: int,
    ready: Callable[[list[str]], bool],
    settle: float = 2.0,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    quit_keys: bytes = b"q",
) -> pyte.Screen:
    """Run `command` on a `columns` x `lines` terminal until `ready(screen lines)` has held for `settle` s.

    The program is then sent `quit_keys`, and ended if it has not quit a few seconds later. Raises
    TimeoutError (with the screen's text) if the screen is not ready within `timeout` seconds.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    terminal_env = dict(env if env is not None else os.environ)
    terminal_env.update(TERM="xterm-256color", COLORTERM="truecolor", COLUMNS=str(columns), LINES=str(lines))
    process = subprocess.Popen(
        list(command), stdin=slave, stdout=slave, stderr=slave, env=terminal_env, start_new_session=True
    )
    os.close(slave)
    screen = _AnsweringScreen(columns, lines, lambda data: os.write(master, data))
    stream = pyte.ByteStream(screen)
    ready_since = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([master], [], [], 0.1)
            if readable:
                try:
                    stream.feed(os.read(master, 65536))
                except OSError:  # the program exited and closed the terminal
                    break
            if ready(screen.display):
                ready_since = ready_since or time.monotonic()
                if time.monotonic() - ready_since >= settle:
                    return screen
            else:
                ready_since = None
        raise TimeoutError(f"{command[0]} never showed the expected screen:\n" + "\n".join(screen.display))
    finally:
        _stop(process, master, quit_keys)


def _stop(process: subprocess.Popen, master: int, quit_keys: bytes) -> None:
    try:
        os.write(master, quit_keys)
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    finally:
        os.close(master)


def _colour(value: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if value == "default":
        return default
    if value in NAMED_COLOURS:
        return NAMED_COLOURS[value]
    try:
        return tuple(bytes.fromhex(value))  # pyte keeps 24-bit and 256-colour values as "rrggbb"
    except ValueError:
        return default


BRAILLE = range(0x2800, 0x2900)
# Unicode braille: bit i of (code - 0x2800) raises dot i + 1; dots 1-3 and 7 are the left column, top down.
BRAILLE_DOTS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3))


def _draw_braille(draw: ImageDraw.ImageDraw, char: str, box: tuple[int, int, int, int], fill) -> None:
    left, top, width, height = box
    bits = ord(char) - BRAILLE.start
    dot_w, dot_h = width / 2, height / 4
    for bit, (column, row) in enumerate(BRAILLE_DOTS):
        if bits >> bit & 1:
            x, y = left + column * dot_w, top + row * dot_h
            draw.rectangle([x + 1, y + 1, x + dot_w - 1, y + dot_h - 1], fill=fill)


def render(screen: pyte.Screen, path: Path, font_size: int = 14, padding: int = 12) -> None:
    """Draw `screen` as a PNG at `path`: every cell in its colours, bold where the program asked."""
    fonts_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    regular = ImageFont.truetype(str(fonts_dir / "DejaVuSansMono.ttf"), font_size)
    bold = ImageFont.truetype(str(fonts_dir / "DejaVuSansMono-Bold.ttf"), font_size)
    cell_width = round(regular.getlength("M"))
    ascent, descent = regular.getmetrics()
    cell_height = ascent + descent
    size = (screen.columns * cell_width + 2 * padding, screen.lines * cell_height + 2 * padding)
    image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y in range(screen.lines):
        row = screen.buffer[y]
        top = padding + y * cell_height
        for x in range(screen.columns):
            char = row[x]
            foreground, background = _colour(char.fg, FOREGROUND), _colour(char.bg, BACKGROUND)
            if char.reverse:
                foreground, background = background, foreground
            left = padding + x * cell_width
            if background != BACKGROUND:
                draw.rectangle([left, top, left + cell_width - 1, top + cell_height - 1], fill=background)
            if len(char.data) == 1 and ord(char.data) in BRAILLE:
                _draw_braille(draw, char.data, (left, top, cell_width, cell_height), foreground)
            elif char.data.strip():
                draw.text((left, top), char.data, font=bold if char.bold else regular, fill=foreground)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
