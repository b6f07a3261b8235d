"""kit.settings: what every process says about itself at start."""

from __future__ import annotations

from pathlib import Path

from kit.settings import ProcessSettings


class Recorded:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.warnings.append((event, fields))


def test_keys_kept_in_files_are_called_what_they_are_at_every_start(tmp_path: Path) -> None:
    log = Recorded()
    ProcessSettings(state_dir=tmp_path, key_custody="file").warn_of_key_custody(log)
    ((event, fields),) = log.warnings
    assert "`file`" in event and "development only" in event
    assert fields == {"secrets_dir": str(tmp_path / "secrets")}
