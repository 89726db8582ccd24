"""`labkit doctor` on the CPU, with faked GPU facts for the bf16 / fp16 line."""

import json

from packaging.requirements import Requirement

from labkit import cli, doctor


def test_python_outside_the_tested_range_warns_with_the_fix():
    assert doctor.check_python("3.13.15").ok
    old = doctor.check_python("3.10.12")
    assert not old.ok and "3.11" in old.fix


def test_a_t4_is_told_it_trains_in_fp16_and_an_a100_gets_bf16():
    t4 = doctor.gpu_checks({"name": "Tesla T4", "capability": (7, 5), "free_gib": 14.6, "total_gib": 15.0})
    assert "fp16" in t4[0].detail and "7.5" in t4[0].detail and "bf16 (native)" not in t4[0].detail
    a100 = doctor.gpu_checks({"name": "NVIDIA A100", "capability": (8, 0), "free_gib": 39.0, "total_gib": 40.0})
    assert "bf16 (native)" in a100[0].detail
    assert t4[1].ok and a100[1].ok


def test_little_free_gpu_memory_warns():
    low = doctor.gpu_checks({"name": "Tesla T4", "capability": (7, 5), "free_gib": 1.2, "total_gib": 15.0})[1]
    assert not low.ok and "1.2 GiB free" in low.detail and low.fix


def test_library_versions_against_declared_ranges():
    checks = doctor.check_libraries([Requirement("numpy>=99"), Requirement("numpy>=1"),
                                     Requirement("surely-not-installed-xyz>=1")])
    assert [c.ok for c in checks] == [False, True, False]
    assert checks[0].fix == 'pip install "numpy>=99"' and checks[2].detail == "not installed"


def test_without_cuda_unsloth_is_not_required():
    assert doctor.check_importable("surely_not_installed_xyz", cuda=False).ok
    missing = doctor.check_importable("surely_not_installed_xyz", cuda=True)
    assert not missing.ok and "labkit[gpu]" in missing.fix


def test_doctor_json_on_the_cpu_never_shows_the_token(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(doctor, "cuda_facts", lambda: None)
    assert cli.main(["doctor", "--json"]) == 0
    out = capsys.readouterr().out
    assert "hf_secret_value_123" not in out
    checks = json.loads(out)
    by_name = {c["name"]: c for c in checks}
    assert {"python", "torch", "numpy", "gpu", "unsloth", "bitsandbytes", "ram", "disk", "hf token"} <= set(by_name)
    assert by_name["hf token"] == {"name": "hf token", "ok": True, "detail": "set (HF_TOKEN)", "fix": ""}
    assert by_name["gpu"]["ok"] and "CPU" in by_name["gpu"]["detail"]
    assert all(set(c) == {"name", "ok", "detail", "fix"} for c in checks)


def test_doctor_text_is_one_line_a_check(monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    monkeypatch.setattr(doctor, "cuda_facts", lambda: None)
    assert cli.main(["doctor"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all(line.startswith(("ok  ", "warn")) for line in lines[:-1])
    assert any(line.startswith("warn  hf token: not set -> ") for line in lines)
    assert lines[-1].endswith("warning(s)")
