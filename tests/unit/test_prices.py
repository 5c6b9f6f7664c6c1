"""The price list and an operator's overrides (REELFORGE_PRICES or [prices] in reelforge.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelforge.catalog import MODELS, Price, price_table, validate_request
from reelforge.errors import ConfigurationError
from reelforge.settings import Settings

pytestmark = pytest.mark.unit


def test_every_model_has_a_price_and_audio_costs_more() -> None:
    for name, price in price_table().items():
        assert price.credits_per_second > 0, name
        silent = price.silent_credits_per_second
        assert silent is None or silent < price.credits_per_second, name
    assert price_table()["veo2"] == Price(105_000)
    assert price_table()["google/veo-3.0-i2v"] == Price(168_000, 105_000)


def test_a_toml_file_overrides_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "reelforge.toml"
    config.write_text(
        '[prices]\n"google/veo3" = 250000\n'
        '"google/veo-3.1-t2v" = { audio = 90000, silent = 45000 }\n'
    )
    monkeypatch.setenv("REELFORGE_CONFIG", str(config))
    prices = price_table(Settings(home=tmp_path).prices)
    assert prices["google/veo3"] == Price(250_000)
    assert prices["google/veo-3.1-t2v"] == Price(90_000, 45_000)
    assert prices["veo2"] == MODELS["veo2"].price
    _, params = validate_request({"model": "google/veo3", "prompt": "x", "duration": 4})
    assert MODELS["google/veo3"].credits(params, prices["google/veo3"]) == 1_000_000


def test_the_environment_takes_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_PRICES", "google/veo3=1000,veo2=2000")
    prices = price_table(Settings(home=tmp_path).prices)
    assert (prices["google/veo3"], prices["veo2"]) == (Price(1000), Price(2000))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"veo9": 5}, "unknown model 'veo9'"),
        ({"veo2": -1}, "credits per second"),
        ({"veo2": {"loud": 5}}, "credits per second"),
    ],
)
def test_mistakes_stop_start_up(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        price_table(overrides)
