"""Tests of companion.config: the quick-mode switch and the description of the hardware."""

import pytest

from companion import config


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv(config.QUICK_ENV, value)
    assert config.quick_mode() is expected
    assert config.choose(full=100, quick=3) == (3 if expected else 100)


def test_quick_mode_unset_is_full(monkeypatch):
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    assert config.choose(full="full", quick="quick") == "full"


def test_quick_mode_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv(config.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match=r"COMPANION_QUICK.*Received: COMPANION_QUICK='maybe'"):
        config.quick_mode()


def test_hardware_names_the_cpu_of_proc_cpuinfo(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nprocessor\t: 1\nmodel name\t: other\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
    monkeypatch.setattr(config.os, "cpu_count", lambda: 2)
    info = config.hardware()
    assert (info["cpu"], info["cpu_family_model"], info["cpu_count"]) == ("AMD EPYC", "family 26, model 2", 2)
    assert config.hardware_text() == "2-core AMD EPYC (family 26, model 2)"
