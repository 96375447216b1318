"""Draw the brand images in custom_components/smart_charge/brand/ (run once, commit them).

    .venv/bin/python -m tools.brand

The icon: a charging plug's bolt in a rounded square, drawn at 4x and scaled down for
smooth edges. The logo: the icon and the name. Sizes follow Home Assistant's brand rules:
icon 256x256 (512 for @2x), logo at most 256 px high (512 for @2x), PNG, transparent.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).parents[1] / "custom_components" / "smart_charge" / "brand"
GREEN = (22, 163, 74, 255)
DARK = (20, 83, 45, 255)
WHITE = (255, 255, 255, 255)
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SCALE = 4


def _icon(size: int) -> Image.Image:
    big = size * SCALE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    pad = big // 16
    draw.rounded_rectangle(
        (pad, pad, big - pad, big - pad), radius=big // 5, fill=GREEN
    )
    # The bolt, on a 16 x 16 grid inside the square.
    bolt = [(9.5, 2), (4, 9), (7.5, 9), (6, 14), (12, 6.5), (8.5, 6.5), (10.5, 2)]
    unit = big / 16
    draw.polygon([(x * unit, y * unit) for x, y in bolt], fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _logo(height: int) -> Image.Image:
    icon = _icon(height)
    font = ImageFont.truetype(str(FONT), int(height * 0.42))
    text = "Smart Charge"
    left, top, right, bottom = font.getbbox(text)
    width = height + height // 8 + int(right - left) + height // 16
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.alpha_composite(icon, (0, 0))
    draw = ImageDraw.Draw(image)
    y = (height - int(bottom - top)) // 2 - int(top)
    draw.text((height + height // 8, y), text, font=font, fill=DARK)
    return image


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    BRAND.mkdir(parents=True, exist_ok=True)
    _icon(256).save(BRAND / "icon.png", optimize=True)
    _icon(512).save(BRAND / "icon@2x.png", optimize=True)
    _logo(128).save(BRAND / "logo.png", optimize=True)
    _logo(256).save(BRAND / "logo@2x.png", optimize=True)


if __name__ == "__main__":
    main()
