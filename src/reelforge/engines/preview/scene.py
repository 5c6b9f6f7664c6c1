"""From a prompt to the parameters of a preview scene.

The preview engine has no model, so it reads the prompt the way a storyboard artist
skims a brief: words pick a palette (blended when several match), the elements on
screen, a subject and how things move. The negative prompt removes what its words
would have added. Everything random comes from :func:`rng_for`, seeded by the request's
seed and a stable hash of the prompt, with one independent stream per purpose, so
removing one element never reshuffles the others.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

Color = tuple[float, float, float]
"""RGB in 0..255."""


@dataclass(frozen=True)
class Palette:
    sky_top: Color
    horizon: Color
    glow: Color
    far: Color
    near: Color
    water: Color
    water_light: Color
    accent: Color
    subject: Color


def _p(*colors: Color) -> Palette:
    return Palette(*colors)


# fmt: off
PALETTES: dict[str, Palette] = {
    "sunset": _p((46, 22, 78), (255, 146, 70), (255, 214, 140), (160, 78, 96), (48, 20, 44),
                 (62, 30, 64), (255, 170, 100), (255, 205, 130), (26, 10, 22)),
    "fire": _p((34, 6, 8), (236, 82, 24), (255, 190, 80), (124, 34, 24), (30, 8, 8),
               (90, 20, 12), (255, 130, 40), (255, 160, 50), (14, 4, 4)),
    "ocean": _p((22, 84, 156), (156, 212, 232), (255, 250, 232), (74, 124, 156), (22, 62, 94),
                (12, 56, 98), (130, 206, 236), (226, 244, 255), (10, 30, 50)),
    "night": _p((4, 7, 24), (30, 50, 104), (222, 232, 255), (26, 36, 72), (8, 12, 30),
                (6, 16, 42), (96, 126, 196), (200, 220, 255), (3, 5, 14)),
    "abyss": _p((0, 14, 30), (0, 78, 104), (150, 240, 255), (0, 42, 62), (0, 18, 30),
                (0, 26, 48), (40, 170, 200), (120, 230, 255), (0, 8, 14)),
    "forest": _p((74, 132, 116), (206, 224, 172), (255, 246, 204), (82, 122, 92), (20, 52, 30),
                 (22, 62, 52), (146, 204, 172), (232, 255, 182), (14, 30, 18)),
    "desert": _p((92, 152, 212), (252, 222, 172), (255, 250, 222), (204, 150, 102),
                 (150, 90, 50), (60, 110, 150), (200, 230, 240), (255, 232, 182), (60, 34, 20)),
    "snow": _p((118, 158, 210), (232, 240, 250), (255, 255, 255), (170, 190, 222),
               (120, 140, 172), (90, 120, 160), (230, 242, 255), (255, 255, 255), (40, 50, 70)),
    "space": _p((4, 0, 14), (62, 22, 94), (255, 204, 255), (40, 16, 62), (10, 5, 22),
                (14, 6, 32), (160, 110, 230), (204, 184, 255), (6, 2, 12)),
    "neon": _p((14, 4, 40), (206, 40, 142), (0, 255, 236), (62, 20, 92), (14, 8, 30),
               (20, 8, 48), (255, 64, 204), (0, 240, 255), (8, 4, 18)),
    "storm": _p((40, 44, 56), (124, 128, 138), (232, 236, 255), (72, 76, 88), (30, 32, 40),
                (30, 40, 50), (124, 134, 146), (204, 212, 232), (16, 18, 22)),
    "dawn": _p((120, 140, 204), (255, 204, 182), (255, 242, 212), (170, 150, 182),
               (90, 80, 122), (80, 100, 150), (255, 214, 200), (255, 236, 220), (40, 34, 60)),
    "lavender": _p((70, 60, 140), (236, 176, 200), (255, 232, 220), (140, 110, 160),
                   (60, 44, 90), (60, 50, 110), (230, 180, 220), (255, 220, 240), (30, 20, 50)),
}
# fmt: on

DEFAULT_PALETTES = ("dawn", "sunset", "ocean", "forest", "lavender", "desert")
"""Pleasant palettes a seed picks from when no word names one."""

DARK_PALETTES = frozenset({"night", "abyss", "space", "neon", "fire", "storm"})


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


PALETTE_WORDS: dict[str, tuple[str, ...]] = {
    "sunset": _words("sunset sunsets sundown dusk evening autumn warm orange amber golden gold"),
    "fire": _words(
        "fire fiery flame flames dragon dragons volcano volcanic lava inferno burning blaze "
        "blazing hell ember embers red phoenix"
    ),
    "ocean": _words("ocean oceans sea seas beach waves surf coast tropical lake river blue"),
    "night": _words("night nights midnight moon moonlight moonlit starry dark nocturnal"),
    "abyss": _words("deep underwater abyss reef diving submarine"),
    "forest": _words("forest forests jungle woods trees meadow garden green spring leaves grass"),
    "desert": _words("desert sand sandy dunes dune canyon savanna sahara dry"),
    "snow": _words("snow snowy winter ice icy frozen arctic glacier blizzard frost"),
    "space": _words("space galaxy galaxies cosmic nebula universe planet planets astronaut"),
    "neon": _words("neon cyberpunk synthwave futuristic city cities skyline"),
    "storm": _words("storm stormy thunder lightning rain rainy cloudy overcast grey gray"),
    "dawn": _words("dawn morning sunrise pastel dream dreamy soft"),
    "lavender": _words("lavender purple violet magical fairy"),
}

ELEMENT_WORDS: dict[str, tuple[str, ...]] = {
    "sun": _words("sun sunny sunset sunrise sundown dawn dusk daylight desert sunlight"),
    "moon": _words("moon moonlight moonlit night midnight"),
    "stars": _words("star stars starry night midnight space galaxy cosmic nebula universe"),
    "mountains": _words(
        "mountain mountains hill hills valley peaks peak landscape canyon cliff cliffs volcano "
        "alps desert dunes dune sand"
    ),
    "forest": _words("forest forests trees tree woods jungle pine"),
    "city": _words("city cities skyline street buildings cyberpunk downtown skyscrapers"),
    "water": _words(
        "ocean oceans sea seas waves wave lake river beach water surf coast underwater"
    ),
    "clouds": _words("cloud clouds cloudy sky storm stormy overcast"),
    "fog": _words("fog foggy mist misty haze hazy"),
    "aurora": _words("aurora northern lights borealis"),
    "nebula": _words("nebula galaxy cosmic"),
    "rain": _words("rain rainy raining drizzle downpour storm stormy"),
    "snowfall": _words("snow snowy snowing snowfall blizzard winter"),
    "embers": _words("fire fiery flame flames ember embers burning volcano lava dragon phoenix"),
    "fireflies": _words("fireflies magic magical fairy enchanted glowing"),
    "bubbles": _words("bubbles bubble underwater"),
    "bursts": _words(
        "explosion explosions explode exploding fireworks firework burst bursts blast blasts sparks"
    ),
    "lightning": _words("lightning thunder thunderstorm"),
}

SUBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "winged": _words(
        "dragon dragons bird birds eagle eagles bat bats phoenix butterfly butterflies owl "
        "crow raven seagull gull hawk falcon griffin angel"
    ),
    "quadruped": _words(
        "cat cats dog dogs fox wolf wolves horse horses deer lion tiger unicorn bear "
        "puppy kitten cow elephant"
    ),
    "humanoid": _words(
        "person man woman girl boy child people knight astronaut robot dancer runner "
        "warrior wizard samurai hiker"
    ),
    "fish": _words("fish whale whales shark sharks dolphin dolphins jellyfish turtle"),
    "boat": _words("boat boats ship ships sailboat yacht sail sailing"),
    "vehicle": _words("car cars truck train bus motorcycle racecar"),
    "orb": _words("ufo spaceship spacecraft orb spirit ghost balloon comet meteor ball"),
}

_PHRASE_MOTIONS: tuple[tuple[str, str], ...] = (
    ("toward the camera", "approach"),
    ("towards the camera", "approach"),
    ("toward the viewer", "approach"),
    ("at the camera", "approach"),
    ("into the distance", "recede"),
    ("away from the camera", "recede"),
    ("to the left", "left"),
    ("to the right", "right"),
)

MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "approach": _words("approach approaches approaching rushes rushing charges charging closer"),
    "recede": _words("recedes receding retreats leaving departs"),
    "left": _words("left leftward westward"),
    "right": _words("right rightward eastward"),
    "fall": _words("falls falling fall drops dropping descends descending plummets sinks"),
    "rise": _words("rises rising ascends ascending climbs soars upward launches"),
    "circle": _words("circles circling orbits orbiting spins spinning swirls whirls"),
    "fly": _words("flies flying fly glides gliding soaring hovering"),
    "walk": _words("walks walking runs running gallops galloping drives driving strolls"),
}

_CAMERA_PHRASES: tuple[tuple[str, str], ...] = (
    ("zoom in", "zoom_in"),
    ("zooms in", "zoom_in"),
    ("push in", "zoom_in"),
    ("dolly in", "zoom_in"),
    ("zoom out", "zoom_out"),
    ("zooms out", "zoom_out"),
    ("pull back", "zoom_out"),
    ("pan left", "pan_left"),
    ("pans left", "pan_left"),
    ("pan right", "pan_right"),
    ("pans right", "pan_right"),
)

FAST_WORDS = frozenset(_words("fast quickly rapid rapidly rushes rushing races racing speeding"))
SLOW_WORDS = frozenset(_words("slow slowly gentle gently calm calmly peaceful serene lazy"))
GROUND_SUBJECTS = frozenset({"quadruped", "humanoid", "vehicle"})
MOVING_BACKDROPS = frozenset({"clouds", "fog", "water", "nebula", "aurora", "rays"})
"""Large elements that change every frame (landforms may slide less than a pixel per
frame); every scene keeps at least one, so no two consecutive frames are alike."""
GREYSCALE_PHRASES = (
    "black and white",
    "black & white",
    "b&w",
    "monochrome",
    "grayscale",
    "greyscale",
    "noir",
)


@dataclass(frozen=True)
class Scene:
    """Everything the renderer and the soundtrack need to know about the prompt."""

    palette: Palette
    palette_names: tuple[str, ...]
    elements: frozenset[str]
    subject: str | None
    subject_word: str | None
    motion: str
    camera: str
    speed: float
    greyscale: bool
    dark: bool
    energy: float
    """0 (calm) .. 1 (action); drives tempo and how busy the scene is."""
    hue_shift: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"palette {'+'.join(self.palette_names)}"]
        if self.elements:
            parts.append("elements " + ", ".join(sorted(self.elements)))
        if self.subject:
            parts.append(f"subject {self.subject} ({self.motion})")
        parts.append(f"camera {self.camera}")
        if self.greyscale:
            parts.append("black and white")
        return "; ".join(parts)


def prompt_digest(prompt: str) -> bytes:
    """Stable across processes and Python versions, unlike ``hash()``."""
    normalized = " ".join(prompt.lower().split())
    return hashlib.sha256(normalized.encode("utf-8")).digest()


def rng_for(seed: int, prompt: str, purpose: str) -> np.random.Generator:
    """An independent, reproducible random stream for one ``purpose`` of one request."""
    key = int.from_bytes(prompt_digest(prompt)[:16], "big")
    tag = int.from_bytes(hashlib.sha256(purpose.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng([seed % 2**64, key, tag])


def tokens(text: str | None) -> tuple[str, str]:
    """Lowercased words joined by single spaces, padded so phrase tests match whole words."""
    words = re.findall(r"[a-z&]+", (text or "").lower())
    return " " + " ".join(words) + " ", " ".join(words)


def _hits(padded: str, words: tuple[str, ...]) -> int:
    return sum(1 for word in words if f" {word} " in padded)


def _first_match(padded: str, table: dict[str, tuple[str, ...]]) -> tuple[str, str] | None:
    """(key, word) for the word that appears earliest in the text (ties: table order)."""
    best: tuple[int, str, str] | None = None
    for key, words in table.items():
        for word in words:
            position = padded.find(f" {word} ")
            if position >= 0 and (best is None or position < best[0]):
                best = (position, key, word)
    return (best[1], best[2]) if best else None


def parse_scene(prompt: str, negative_prompt: str | None, seed: int) -> Scene:
    """Turn the request's words into scene parameters (deterministic)."""
    text, _ = tokens(prompt)
    negative, _ = tokens(negative_prompt)
    rng = rng_for(seed, prompt, "scene")
    excluded = {name for name, words in PALETTE_WORDS.items() if _hits(negative, words)}

    scores = {
        name: _hits(text, words) for name, words in PALETTE_WORDS.items() if name not in excluded
    }
    chosen = {name: score for name, score in scores.items() if score > 0}
    if not chosen:
        pool = [name for name in DEFAULT_PALETTES if name not in excluded] or ["dawn"]
        chosen = {pool[int(rng.integers(len(pool)))]: 1}
    hue_shift = float(rng.uniform(-0.04, 0.04))
    palette = _shift_hue(_blend_palettes(chosen), hue_shift)
    names = tuple(sorted(chosen, key=lambda n: (-chosen[n], n)))
    dark = sum(chosen[n] for n in chosen if n in DARK_PALETTES) * 2 > sum(chosen.values())

    elements = {name for name, words in ELEMENT_WORDS.items() if _hits(text, words)}
    match = _first_match(text, SUBJECT_WORDS)
    ground_subject = match is not None and match[0] in GROUND_SUBJECTS
    elements |= _default_elements(elements, dark, rng, allow_water=not ground_subject)
    if "sun" in elements and "moon" in elements:
        elements.discard("moon" if not dark else "sun")
    removed = {name for name, words in ELEMENT_WORDS.items() if _hits(negative, words)}
    for word in ("mountains", "clouds", "water", "stars", "moon", "sun", "particles"):
        if f" {word} " in negative:
            removed.add(word)
    if "particles" in removed:
        removed |= {"embers", "fireflies", "bubbles", "snowfall", "rain", "dust"}
    if " underwater " in text:
        elements -= {"sun", "moon", "stars", "clouds", "mountains", "water", "aurora", "dust"}
        elements |= {"rays", "bubbles"}
    elements -= removed
    if not elements & MOVING_BACKDROPS:
        elements.add("rays" if "fog" in removed else "fog")

    subject, subject_word = match if match else (None, None)
    if subject and _hits(negative, SUBJECT_WORDS[subject]):
        subject = subject_word = None
    if subject == "boat" and "water" not in elements:
        elements.add("water")

    motion = _motion(text, subject)
    camera = next((cam for phrase, cam in _CAMERA_PHRASES if f" {phrase} " in text), "drift")
    speed = 1.0
    if _hits(text, tuple(FAST_WORDS)):
        speed = 1.6
    elif _hits(text, tuple(SLOW_WORDS)):
        speed = 0.6
    energy = 0.3 + 0.3 * (speed > 1) - 0.15 * (speed < 1) + 0.25 * ("bursts" in elements)
    energy += 0.15 * (motion in ("approach", "fall", "walk", "circle")) + 0.1 * ("rain" in elements)
    greyscale = any(f" {p} " in text for p in GREYSCALE_PHRASES) and not any(
        f" {p} " in negative for p in GREYSCALE_PHRASES
    )
    return Scene(
        palette=palette,
        palette_names=names,
        elements=frozenset(elements),
        subject=subject,
        subject_word=subject_word,
        motion=motion,
        camera=camera,
        speed=speed,
        greyscale=greyscale,
        dark=dark,
        energy=float(np.clip(energy, 0.0, 1.0)),
        hue_shift=hue_shift,
    )


def _blend_palettes(weights: dict[str, int]) -> Palette:
    total = float(sum(weights.values()))
    fields = Palette.__dataclass_fields__
    blended: dict[str, Color] = {}
    for name in fields:
        acc = np.zeros(3)
        for palette_name, weight in weights.items():
            acc += np.asarray(getattr(PALETTES[palette_name], name)) * (weight / total)
        blended[name] = (float(acc[0]), float(acc[1]), float(acc[2]))
    return Palette(**blended)


def _shift_hue(palette: Palette, amount: float) -> Palette:
    """Rotate every colour's hue a little so seeds vary the look, not the mood."""
    shifted: dict[str, Color] = {}
    for name in Palette.__dataclass_fields__:
        r, g, b = (c / 255.0 for c in getattr(palette, name))
        h, light, sat = colorsys.rgb_to_hls(r, g, b)
        r, g, b = colorsys.hls_to_rgb((h + amount) % 1.0, light, sat)
        shifted[name] = (r * 255.0, g * 255.0, b * 255.0)
    return Palette(**shifted)


def _default_elements(
    found: set[str], dark: bool, rng: np.random.Generator, allow_water: bool
) -> set[str]:
    """A pleasant landscape for prompts that name no scenery."""
    extra: set[str] = set()
    landforms = {"mountains", "forest", "city", "water", "nebula"}
    if not found & landforms:
        extra.add("mountains")
        if rng.random() < 0.4 and allow_water:
            extra.add("water")
    if not found & {"sun", "moon"} and "nebula" not in found:
        extra.add("moon" if dark else "sun")
    if dark and "stars" not in found:
        extra.add("stars")
    if not found & {"clouds", "nebula"} and not dark:
        extra.add("clouds")
    if not found & {"rain", "snowfall", "embers", "fireflies", "bubbles"}:
        extra.add("fireflies" if dark else "dust")
    if "fog" not in found and rng.random() < 0.3:
        extra.add("fog")
    return extra


def _motion(text: str, subject: str | None) -> str:
    for phrase, motion in _PHRASE_MOTIONS:
        if f" {phrase} " in text:
            return motion
    found = _first_match(text, MOTION_WORDS)
    if found:
        return found[0]
    return {
        "winged": "fly",
        "quadruped": "walk",
        "humanoid": "walk",
        "fish": "fly",
        "vehicle": "walk",
        "boat": "right",
    }.get(subject or "", "hover")
