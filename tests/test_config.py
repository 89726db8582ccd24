import dataclasses

import pytest

from labkit.cli import main
from labkit.config import (SECTIONS, Config, ConfigError, all_keys, diff_configs, load_config, preset_names,
                           read_preset)


def test_every_preset_resolves_and_required_ones_exist():
    assert {"cpu-demo", "smoke", "colab-llama3.2-1b", "colab-llama3.2-3b-qlora"} <= set(preset_names())
    for name in preset_names():
        config = load_config(name)
        assert config.preset == name


def test_preset_values_and_inheritance():
    smoke = load_config("smoke")
    assert smoke.model.name == "tiny-random-llama"
    assert smoke.data.sources == load_config("cpu-demo").data.sources  # inherited from base
    qlora = load_config("colab-llama3.2-3b-qlora")
    assert qlora.model.load_in_4bit is True and qlora.data.sources == ["mlabonne/FineTome-100k"]


def test_every_field_is_documented():
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc"


def test_every_preset_key_is_commented_and_known():
    for name in preset_names():
        raw = read_preset(name)
        for section, values in raw.items():
            if section in SECTIONS:
                for key in values:
                    assert f"{section}.{key}" in all_keys()


@pytest.mark.parametrize("override,value", [
    ("lora.r=8", 8), ("r=8", 8), ("train.lr=1e-4", 1e-4), ("data.limit=none", None),
    ("lora.target_modules=[q_proj, v_proj]", ["q_proj", "v_proj"]), ("train.gradient_checkpointing=true", True),
])
def test_overrides_are_coerced(override, value):
    config = load_config("cpu-demo", [override])
    section, name = {"r": "lora.r"}.get(override.split("=")[0], override.split("=")[0]).split(".")
    assert getattr(getattr(config, section), name) == value


@pytest.mark.parametrize("override,message", [
    ("lora.r=0", "lora.r=0 is invalid: must be > 0"),
    ("lr=-1", "train.lr=-1.0 is invalid: must be > 0"),
    ("data.invalid=maybe", "data.invalid='maybe' is invalid: allowed values are fail, drop"),
    ("lora.rank=4", "unknown setting 'lora.rank'; did you mean lora.r"),
    ("limit=3", "ambiguous: write one of data.limit, eval.limit"),
    ("train.batch_size=two", "train.batch_size='two' is invalid: expected int"),
    ("data.sources=/no/such/file.jsonl", "file not found"),
    ("model.dtype=float8", "allowed values are auto, float32, bfloat16, float16"),
    ("no_equals_sign", "must look like key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_config("cpu-demo", [override])
    assert message in str(err.value)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available presets are .*cpu-demo"):
        load_config("cpu_demo")


def test_cli_prints_one_clear_line_for_a_bad_setting(capsys):
    assert main(["train", "--preset", "smoke", "--set", "lora.r=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["labkit: configuration error: lora.r=0 is invalid: must be > 0"]


def test_round_trip_through_dict_and_diff():
    config = load_config("smoke", ["lora.r=2"])
    again = Config.from_dict(config.to_dict())
    assert again == config
    assert diff_configs(load_config("smoke").to_dict(), config.to_dict()) == ["lora.r: 4 -> 2"]


def test_from_dict_rejects_unknown_section():
    with pytest.raises(ConfigError, match="unknown top-level key"):
        Config.from_dict({"trian": {}})
