"""kit.custody: a process's keys behind one object, kept in files or sealed under a passphrase; sealing forgets them
at once and unsealing brings them back without a restart (SPEC §8)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from kit import errors
from kit.crypto import BlindIndex, WrappedKey
from kit.custody import Custody, PassphraseSource, file_loader, open_custody, sealed_loader
from kit.keyfiles import SEALED_KEYS_FILE, WrongPassphrase, read_sealed_file
from kit.secrets import SERVICE_SECRETS, ensure_secrets
from kit.settings import ServiceSettings

PASSPHRASE = "a long unseal passphrase"


class IntakeKeys(ServiceSettings):
    process_name = "intake"


def try_unseal(keys: Custody) -> bool:
    try:
        keys.unseal()
    except errors.Sealed:
        return False
    return True


def sealed_custody(root: Path, source: PassphraseSource) -> Custody:
    """Intake's sealed custody, as open_custody makes it."""
    custody = Custody("sealed", sealed_loader(root / "intake", source, kek=True, secret_names=SERVICE_SECRETS),
                      process="intake")
    custody.passphrases = source
    return custody


def test_keys_sealed_open_only_with_the_passphrase_and_hold_nothing_in_clear(tmp_path: Path) -> None:
    created = ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    assert "intake/keys.sealed" in created and "gateway/keys.sealed" in created
    assert not any(name.endswith(("kek.json", "blind_index.key", "audit.key")) for name in created)
    bundle, _ = read_sealed_file(tmp_path / "intake" / SEALED_KEYS_FILE, passphrase=PASSPHRASE)
    kek = base64.b64decode(bundle["kek"]["keys"]["k1"])
    assert kek not in (tmp_path / "intake" / SEALED_KEYS_FILE).read_bytes()
    with pytest.raises(WrongPassphrase):
        read_sealed_file(tmp_path / "intake" / SEALED_KEYS_FILE, passphrase="not it")
    gateway, _ = read_sealed_file(tmp_path / "gateway" / SEALED_KEYS_FILE, passphrase=PASSPHRASE)
    # The gateway keeps no KEK; its Ed25519 keys are sealed with the rest, only their public halves are files.
    assert "kek" not in gateway and set(gateway["secrets"]) == {"audit", "audit_signing", "token_signing"}
    assert not any(path.name in ("token_signing.pem", "audit_signing.pem") for path in tmp_path.rglob("*"))
    assert (tmp_path / "gateway" / "token_signing.pub.pem").is_file()
    assert (tmp_path / "intake" / "token_signing.pub.pem").is_file()


def test_sealing_forgets_every_key_and_unsealing_brings_the_same_ones_back(tmp_path: Path) -> None:
    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    source = PassphraseSource()
    keys = sealed_custody(tmp_path, source)
    assert keys.sealed and not try_unseal(keys)  # no passphrase handed over yet
    with pytest.raises(errors.Sealed):
        keys.new_wrapped_data_key()

    source.offer(PASSPHRASE)
    keys.unseal()
    data_key, wrapped = keys.new_wrapped_data_key()
    index = BlindIndex(keys.secret_source("blind_index"))
    term = index.term("name", "марыя")

    keys.seal()
    for needs_a_key in (lambda: keys.unwrap(wrapped), lambda: keys.secret("audit"), lambda: index.term("name", "x"),
                        lambda: keys.derived_keys("idempotency")):
        with pytest.raises(errors.Sealed):
            needs_a_key()
    with pytest.raises(errors.Sealed):
        keys.unseal()  # the passphrase was taken once: a seal is not undone by what was handed over before

    source.offer("the wrong one")
    assert not try_unseal(keys)
    source.offer(PASSPHRASE)
    keys.unseal()
    assert keys.unwrap(wrapped) == data_key and index.term("name", "марыя") == term


def test_a_passphrase_handed_over_is_not_kept_to_undo_a_later_seal(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`rehab unseal` run again while the processes are open, or a passphrase waiting when the system started
    sealed: none of them may let a bare signed unseal command (no passphrase) reopen the keys after a seal."""
    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    source = PassphraseSource()
    keys = sealed_custody(tmp_path, source)
    source.offer(PASSPHRASE)
    keys.unseal()
    source.offer(PASSPHRASE)  # the second `rehab unseal`: this process is open already
    keys.unseal()
    keys.seal()
    assert not try_unseal(keys)

    source.offer(PASSPHRASE)  # handed over, then sealed before it was used
    keys.seal()
    assert not try_unseal(keys)

    clock = [1000.0]
    monkeypatch.setattr("kit.custody.time.monotonic", lambda: clock[0])
    source.offer(PASSPHRASE)  # waiting in a process that started sealed (the seal mark), never used
    clock[0] += PassphraseSource.PENDING_SECONDS + 1
    assert not try_unseal(keys)
    source.offer(PASSPHRASE)
    clock[0] += 1
    assert try_unseal(keys)  # handed over for this unseal: used


def test_a_command_that_opens_its_keys_twice_reads_the_passphrase_pipe_once(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's `manage` command gets the passphrase as one line on a pipe (ops.passphrase); reports opens its
    keys twice in one `erasures apply`, and the second opening read the pipe's end, an empty passphrase."""
    from kit import custody as custody_module

    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    monkeypatch.setattr(custody_module, "_asked", [])
    reading, writing = os.pipe()
    os.write(writing, (PASSPHRASE + "\n").encode())
    os.close(writing)
    try:
        settings = IntakeKeys(secrets_dir=tmp_path, key_custody="sealed", unseal_fd=reading)
        first, second = custody_module.opened(settings, ask=False), custody_module.opened(settings, ask=False)
        assert not first.sealed and not second.sealed
    finally:
        os.close(reading)


def test_a_kek_added_by_rotation_reaches_a_running_process_without_its_passphrase(tmp_path: Path) -> None:
    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    running, operator = PassphraseSource(), PassphraseSource()
    running.offer(PASSPHRASE)
    operator.offer(PASSPHRASE)
    service, rotating = sealed_custody(tmp_path, running), sealed_custody(tmp_path, operator)
    service.unseal()
    rotating.unseal()
    _, old = service.new_wrapped_data_key()

    time.sleep(0.01)  # a new mtime for the file's stamp
    new_kid = rotating.add_kek()
    assert service.active == new_kid and service.wrap(os.urandom(32)).kid == new_kid
    assert service.unwrap(old)  # the old KEK still opens what it wrapped
    rotating.remove_kek("k1")
    with pytest.raises(Exception, match="k1"):
        service.unwrap(WrappedKey("k1", old.blob))


def test_the_passphrase_pipe_unseals_at_once_and_again_after_a_seal(tmp_path: Path) -> None:
    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    reading, writing = os.pipe()
    os.write(writing, (PASSPHRASE + "\n").encode())  # what `rehab up` writes before the process starts
    source = PassphraseSource(fd=reading)
    keys = sealed_custody(tmp_path, source)
    source.follow_pipe(lambda: try_unseal(keys))
    assert not keys.sealed  # before it answers anything

    keys.seal()
    os.write(writing, (PASSPHRASE + "\n").encode())  # `rehab unseal`, through the supervisor
    deadline = time.monotonic() + 10
    while keys.sealed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not keys.sealed
    os.close(writing)


def test_file_custody_says_which_keyring_is_missing(tmp_path: Path) -> None:
    keys = Custody("file", file_loader(tmp_path / "intake" / "kek.json", {}), process="intake")
    with pytest.raises(errors.KeysUnavailable, match="no keyring yet at"):
        keys.unseal()
    settings = IntakeKeys(secrets_dir=tmp_path)
    ensure_secrets(tmp_path)
    opened = open_custody(settings)
    opened.unseal()
    assert opened.kind == "file" and opened.kids == ["k1"]


def test_an_earlier_flat_secrets_folder_is_moved_into_one_folder_per_process(tmp_path: Path) -> None:
    flat = tmp_path / "secrets"
    flat.mkdir()
    old_kek = {"active": "k1", "keys": {"k1": base64.b64encode(os.urandom(32)).decode()}}
    (flat / "kek.json").write_text(json.dumps(old_kek))
    (flat / "blind_index.key").write_bytes(base64.b64encode(os.urandom(32)))
    (flat / "audit.key").write_bytes(base64.b64encode(os.urandom(32)))
    (flat / "nats-intake.nk").write_bytes(b"SUAseed")

    moved = ensure_secrets(flat)
    assert {"intake/kek.json", "referrals/kek.json", "funds/kek.json", "intake/nats.nk"} <= set(moved)
    assert not (flat / "kek.json").exists() and not (flat / "nats-intake.nk").exists()
    assert not (flat / "gateway" / "kek.json").exists()  # the gateway never holds a KEK
    for process in ("intake", "referrals", "funds"):  # what the old KEK wrapped still opens in every service
        assert json.loads((flat / process / "kek.json").read_text()) == old_kek
        assert (flat / process / "kek.json").stat().st_mode & 0o777 == 0o600
    assert (flat / "intake" / "nats.nk").read_bytes() == b"SUAseed"


def test_a_command_with_no_way_to_be_told_the_passphrase_says_so_not_that_the_keys_are_sealed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`echo … | rehab users add --password-stdin` under sealed custody said "the keys are sealed: rehab unseal" while
    the system ran unsealed; it asks on the terminal even when stdin is taken, and without one says what it needs."""
    from kit import custody as custody_module

    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    monkeypatch.setattr(custody_module, "_asked", [])
    settings = IntakeKeys(secrets_dir=tmp_path, key_custody="sealed")
    monkeypatch.setattr(custody_module, "_terminal", lambda: False)
    with pytest.raises(errors.PassphraseNeeded) as needed:
        custody_module.opened(settings)
    assert "UNSEAL_PASSPHRASE_FILE" in needed.value.detail and "rehab unseal" not in needed.value.detail
    assert isinstance(needed.value, errors.Sealed)  # what callers catch for a sealed keyring, caught the same

    monkeypatch.setattr(custody_module, "_terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: PASSPHRASE)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # stdin taken (a password piped in): the terminal asked
    assert not custody_module.opened(settings).sealed


def test_a_command_given_a_passphrase_that_does_not_open_the_keys_says_so_not_that_the_keys_are_sealed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong passphrase in UNSEAL_PASSPHRASE_FILE, or no such file, was said as "the keys are sealed: rehab
    unseal" while the system ran unsealed (an outside review's find)."""
    from kit import custody as custody_module

    ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE)
    (tmp_path / "wrong").write_text("not the passphrase at all\n")
    for given in (tmp_path / "wrong", tmp_path / "nowhere"):
        monkeypatch.setattr(custody_module, "_asked", [])
        settings = IntakeKeys(secrets_dir=tmp_path, key_custody="sealed", unseal_passphrase_file=given)
        with pytest.raises(errors.PassphraseNotOpening) as wrong:
            custody_module.opened(settings)
        assert "UNSEAL_PASSPHRASE_FILE" in wrong.value.detail and "rehab unseal" not in wrong.value.detail


# ---- moving an installation from `file` to `sealed` -----------------------------------------------------------------


def process_keys(process: str, root: Path, **custody: object) -> Custody:
    settings = type(f"{process}Keys", (ServiceSettings,), {"process_name": process})(secrets_dir=root, **custody)
    keys = open_custody(settings)
    if keys.passphrases is not None:
        keys.passphrases.offer(PASSPHRASE)
    keys.unseal()
    return keys


def test_plain_keys_moved_to_sealed_open_what_they_opened_and_leave_no_private_key_in_a_file(tmp_path: Path) -> None:
    """Started under `sealed`, an installation made under `file` was refused (new keys would open none of its records);
    `rehab keys move-to-sealed` seals the keys it has. The same keys after: a data key wrapped before unwraps, each
    named secret and signing key is what it was, and no private key is left in a file."""
    from kit.secrets import keeps_keks, move_to_sealed, secret_names

    ensure_secrets(tmp_path)
    before = {}
    for process in ("intake", "referrals", "funds", "reports", "gateway"):
        keys = process_keys(process, tmp_path)
        wrapped = keys.new_wrapped_data_key() if keeps_keks(process) else None
        before[process] = (wrapped, {name: keys.secret(name) for name in secret_names(process)},
                           keys.signing_key().private_bytes_raw())
    gateway_token = (tmp_path / "gateway" / "token_signing.pem").read_bytes()

    removed = move_to_sealed(tmp_path, PASSPHRASE)

    assert {"intake/kek.json", "gateway/token_signing.pem", "funds/audit_signing.pem"} <= set(removed)
    assert not [path for path in tmp_path.rglob("*") if path.name in ("kek.json", "blind_index.key", "audit.key")
                or path.name.endswith(".pem") and not path.name.endswith(".pub.pem")]
    for process, (wrapped, secrets, signing) in before.items():
        keys = process_keys(process, tmp_path, key_custody="sealed")
        if wrapped is not None:
            data_key, envelope = wrapped
            assert keys.unwrap(envelope) == data_key
        assert {name: keys.secret(name) for name in secrets} == secrets
        assert keys.signing_key().private_bytes_raw() == signing
    token = base64.b64decode(read_sealed_file(tmp_path / "gateway" / SEALED_KEYS_FILE,
                                              passphrase=PASSPHRASE)[0]["secrets"]["token_signing"])
    assert token == gateway_token
    # The next start under `sealed` makes nothing more: no new key beside the moved ones, none in clear.
    assert ensure_secrets(tmp_path, custody="sealed", passphrase=PASSPHRASE) == []
    assert move_to_sealed(tmp_path, PASSPHRASE) == []  # and a second run finds nothing to move


def test_a_move_that_stopped_half_way_is_finished_only_under_its_own_passphrase(tmp_path: Path) -> None:
    from kit.secrets import KeysNotMoved, move_to_sealed

    ensure_secrets(tmp_path)
    kek = json.loads((tmp_path / "intake" / "kek.json").read_text())
    # As if stopped after intake's keys.sealed was written and its KEK file removed, the rest still in clear.
    intake_sealed = {"kek": {"active": kek["active"], "keys": kek["keys"]}, "secrets": {
        name: base64.b64encode(base64.b64decode((tmp_path / "intake" / file).read_bytes().strip())).decode()
        for name, file in SERVICE_SECRETS.items()}}
    intake_sealed["secrets"]["audit_signing"] = base64.b64encode(
        (tmp_path / "intake" / "audit_signing.pem").read_bytes()).decode()
    from kit.keyfiles import write_sealed_file

    write_sealed_file(tmp_path / "intake" / SEALED_KEYS_FILE, intake_sealed, passphrase=PASSPHRASE)
    (tmp_path / "intake" / "kek.json").unlink()

    with pytest.raises(KeysNotMoved, match="intake/keys.sealed, made by an earlier run, does not open"):
        move_to_sealed(tmp_path, "another long passphrase")
    assert (tmp_path / "funds" / "kek.json").is_file(), "nothing removed"
    assert not (tmp_path / "funds" / SEALED_KEYS_FILE).exists(), "nothing sealed before every process was checked"
    (tmp_path / "referrals" / "audit.key").write_bytes(base64.b64encode(os.urandom(32)))  # and a file changed since
    write_sealed_file(tmp_path / "referrals" / SEALED_KEYS_FILE, {"secrets": {}}, passphrase=PASSPHRASE)
    with pytest.raises(KeysNotMoved, match="referrals/keys.sealed holds other keys"):
        move_to_sealed(tmp_path, PASSPHRASE)
    (tmp_path / "referrals" / SEALED_KEYS_FILE).unlink()

    removed = move_to_sealed(tmp_path, PASSPHRASE)
    assert "intake/blind_index.key" in removed and "intake/kek.json" not in removed
    assert process_keys("intake", tmp_path, key_custody="sealed").kids == [kek["active"]]
