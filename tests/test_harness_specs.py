"""The fake providers' spec validation: skipped without ../shared locally, a failure in CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import providers
from harness.providers import PostmarkFake, SpecMissing, has_spec


@pytest.fixture
def no_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout without ../shared/specs."""
    missing = tmp_path / "shared" / "specs"
    monkeypatch.setattr(providers, "SPECS", missing)
    return missing


@pytest.mark.parametrize("ci", ["true", "1"])
def test_ci_fails_loudly_naming_the_missing_spec(
    no_specs: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    wanted = re.escape(str((no_specs / "postmark-send.swagger2.yaml").resolve()))
    with pytest.raises(SpecMissing, match=f"^{wanted} is missing: in CI the fake postmark"):
        has_spec("postmark")
    # A fake that would validate refuses to start, so no test silently goes unchecked.
    with pytest.raises(SpecMissing):
        PostmarkFake()


@pytest.mark.parametrize("ci", [None, ""])
def test_outside_ci_a_missing_spec_only_skips_validation(
    no_specs: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert not has_spec("postmark")
    with PostmarkFake() as fake:
        assert not fake.validating


def test_a_fake_without_validation_needs_no_spec_even_in_ci(
    no_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with PostmarkFake(validate=False) as fake:  # what the benchmarks run
        assert not fake.validating
