"""The theme file: validation, image backgrounds from the user's own folder, output options."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgpipe_assets.errors import InvalidThemeFile
from imgpipe_assets.imaging import pipeline
from imgpipe_assets.themes import load_themes


def write_theme(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "themes.yaml"
    path.write_text("themes:\n" + body)
    return path


def photo(path: Path, size: tuple[int, int] = (300, 200)) -> None:
    left = Image.new("RGB", (size[0] // 2, size[1]), (200, 40, 40))
    im = Image.new("RGB", size, (40, 40, 200))
    im.paste(left, (0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, "JPEG", quality=95)


IMAGE_THEME = """
  shop-window:
    background: {style: image, path: backgrounds/window.jpg, focus: [0.25, 0.5]}
    canvas: [200, 200]
"""


def test_image_background_fills_the_canvas_around_its_focus(tmp_path: Path) -> None:
    photo(tmp_path / "mine" / "backgrounds" / "window.jpg")
    theme = load_themes(write_theme(tmp_path / "mine", IMAGE_THEME))["shop-window"]
    bg = pipeline.background(theme)
    assert bg.shape == (200, 200, 3)
    # Focused on the left quarter: the red half fills most of the square crop.
    red = (bg[..., 0] > 150) & (bg[..., 2] < 100)
    assert red.mean() > 0.6


def test_image_background_is_pinned_by_content_not_location(tmp_path: Path) -> None:
    photo(tmp_path / "a" / "backgrounds" / "window.jpg")
    first = load_themes(write_theme(tmp_path / "a", IMAGE_THEME))["shop-window"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = load_themes(tmp_path / "b" / "themes.yaml")["shop-window"]
    assert moved.background_fingerprint() == first.background_fingerprint()
    assert moved.render_fingerprint() == first.render_fingerprint()
    photo(tmp_path / "b" / "backgrounds" / "window.jpg", size=(320, 200))
    changed = load_themes(tmp_path / "b" / "themes.yaml")["shop-window"]
    assert changed.background_fingerprint() != first.background_fingerprint()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  t:\n    background: {style: image}\n", "needs background.path"),
        ("  t:\n    background: {style: image, path: nowhere.jpg}\n", "nowhere.jpg"),
        ("  t:\n    background: {style: image, path: notes.jpg}\n", "NOT_AN_IMAGE"),
        ("  t:\n    output: {sizes: [5000]}\n", "output.sizes"),
        ("  t:\n    output: {sizes: [big]}\n", "output.sizes"),
        ("  t:\n    align: left\n", "align"),
    ],
)
def test_theme_mistakes_name_the_theme_and_field(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(InvalidThemeFile, match=message) as info:
        load_themes(write_theme(tmp_path, body))
    assert "theme 't'" in str(info.value)


def test_output_options_are_read(tmp_path: Path) -> None:
    body = "  t:\n    output: {format: webp, quality: 80, progressive: true, sizes: [512, 1024]}\n"
    theme = load_themes(write_theme(tmp_path, body))["t"]
    assert (theme.output_format, theme.quality, theme.progressive) == ("webp", 80, True)
    assert theme.sizes == (1024, 512)
    assert np.asarray(pipeline.background(theme)).shape == (2048, 2048, 3)


@pytest.mark.parametrize(
    ("featured", "message"),
    [(["a", "b"], "only one theme can be featured"), (["a:yes-please"], "featured must be")],
)
def test_featured_is_one_theme_at_most_and_a_flag(
    tmp_path: Path, featured: list[str], message: str
) -> None:
    lines = ["themes:"]
    for spec in featured:
        name, _, value = spec.partition(":")
        lines += [
            f"  {name}:",
            '    background: {style: solid, colors: ["#ffffff"]}',
            f"    featured: {value or 'true'}",
        ]
    path = tmp_path / "themes.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidThemeFile, match=message):
        load_themes(path)
