"""kit.checkpoints without NATS: a checkpoint is signed over canonical JSON with the process's own key and refused
under any other key, process or field; the verdict compares a trail's head with the newest checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit import checkpoints
from kit.checkpoints import Head

KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=150)
CHAIN_OK = {"ok": True, "entries": 10, "first_bad": None}
HASHES = {seq: f"{seq:064x}" for seq in range(1, 11)}


def signed(seq: int = 10, hash: str | None = None) -> dict:
    return checkpoints.sign(KEY, process="intake", seq=seq, hash=hash or HASHES[seq], count=seq, at=NOW)


def judge(checkpoint: dict | None, *, head: Head | None = None, chain: dict = CHAIN_OK, status: str | None = None,
          hashes: dict[int, str] = HASHES, public=KEY.public_key()) -> dict:  # noqa: ANN001
    head = head or Head(max(hashes) if hashes else None, hashes[max(hashes)] if hashes else None,
                        NOW - timedelta(hours=1) if hashes else None)
    return checkpoints.judge(process="intake", chain=chain, head=head, checkpoint=checkpoint, status=status,
                             public=public, hash_at_seq=hashes.get, now=NOW, grace=GRACE)


def test_a_checkpoint_verifies_under_its_key_only_and_any_changed_field_breaks_it() -> None:
    checkpoint = signed()
    assert checkpoints.signature_valid(checkpoint, KEY.public_key(), process="intake")
    assert checkpoint["key"] == checkpoints.key_id(KEY.public_key()) and len(checkpoint["key"]) == 16
    assert not checkpoints.signature_valid(checkpoint, KEY.public_key(), process="funds")
    other = Ed25519PrivateKey.generate()
    assert not checkpoints.signature_valid(checkpoint, other.public_key(), process="intake")
    for field, value in {"seq": 11, "hash": "0" * 64, "count": 1, "at": "2020-01-01T00:00:00+00:00"}.items():
        assert not checkpoints.signature_valid({**checkpoint, field: value}, KEY.public_key(), process="intake")
    assert not checkpoints.signature_valid({**checkpoint, "extra": 1}, KEY.public_key(), process="intake")
    assert not checkpoints.signature_valid({**checkpoint, "signature": "!!"}, KEY.public_key(), process="intake")
    assert not checkpoints.signature_valid({"unreadable": True}, KEY.public_key(), process="intake")


def test_a_trail_holding_the_newest_checkpoint_is_ok() -> None:
    verdict = judge(signed(8))  # entries after the checkpoint: not signed yet, fine
    assert verdict["ok"] is True and verdict["checkpoint_status"] == "matches" and verdict["truncated"] is False
    assert verdict["checkpoint"]["seq"] == 8 and verdict["problem"] is None


def test_a_trail_ending_below_the_checkpoint_or_empty_was_truncated() -> None:
    verdict = judge(signed(10), hashes={seq: HASHES[seq] for seq in range(1, 8)})
    assert verdict["ok"] is False and verdict["truncated"] is True and verdict["checkpoint_status"] == "truncated"
    assert verdict["problem"] == f"truncated: entries up to seq 10 were signed at {NOW.isoformat()} but the trail ends at 7"
    empty = judge(signed(10), hashes={})
    assert empty["truncated"] is True and empty["problem"].endswith("but the trail is empty")


def test_another_entry_at_the_signed_sequence_is_a_truncation_too() -> None:
    verdict = judge(signed(10), hashes={**HASHES, 10: "e" * 64})
    assert verdict["ok"] is False and verdict["truncated"] is True and verdict["checkpoint_status"] == "diverged"


def test_a_forged_checkpoint_is_refused_and_its_claims_not_believed() -> None:
    forged = checkpoints.sign(Ed25519PrivateKey.generate(), process="intake", seq=50, hash="f" * 64, count=50, at=NOW,
                              restored={"backup_made": "2026-11-01T00:00:00+00:00", "replaced": None})
    verdict = judge(forged)
    assert verdict["ok"] is False and verdict["checkpoint_status"] == "forged" and verdict["truncated"] is False
    # Shown as found, for the operator, but what it says of a restore is not passed on as if it were so.
    assert verdict["checkpoint"]["seq"] == 50 and verdict["checkpoint"]["last_restore"] is None
    assert "restored" not in verdict["checkpoint"]


@pytest.mark.parametrize(("oldest", "status", "ok"), [(timedelta(seconds=10), "none", True),
                                                      (timedelta(hours=2), "missing", False)])
def test_no_checkpoint_is_fine_only_while_the_trail_is_younger_than_a_checkpoint_round(oldest, status, ok) -> None:  # noqa: ANN001
    verdict = judge(None, head=Head(10, HASHES[10], NOW - oldest))
    assert verdict["checkpoint_status"] == status and verdict["ok"] is ok


def test_nats_away_a_broken_chain_or_no_key_is_never_ok() -> None:
    assert judge(signed(), status=checkpoints.UNAVAILABLE)["checkpoint_status"] == "unavailable"
    assert judge(signed(), status=checkpoints.UNAVAILABLE)["ok"] is False
    assert judge(signed(), public=None)["checkpoint_status"] == "no_key"
    broken = judge(signed(), chain={"ok": False, "entries": 10, "first_bad": "x"})
    assert broken["ok"] is False and broken["checkpoint_status"] == "matches"
    assert broken["problem"] == "the hash chain is broken"


def test_each_process_gets_its_own_signing_key_owner_only_never_the_token_key(tmp_path) -> None:  # noqa: ANN001
    import stat

    from kit.secrets import AUDIT_SIGNING_KEY_FILES, AUDIT_VERIFYING_KEY_FILES, TOKEN_PRIVATE_KEY_FILE, ensure_secrets

    created = ensure_secrets(tmp_path)
    assert set(AUDIT_SIGNING_KEY_FILES) == {"intake", "referrals", "funds", "reports", "gateway"}
    ids = set()
    for process, name in AUDIT_SIGNING_KEY_FILES.items():
        assert name in created and stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
        private = checkpoints.load_private(tmp_path / name)
        public = checkpoints.load_public(tmp_path / AUDIT_VERIFYING_KEY_FILES[process])
        assert checkpoints.key_id(public) == checkpoints.key_id(private.public_key())
        ids.add(checkpoints.key_id(public))
    ids.add(checkpoints.key_id(checkpoints.load_private(tmp_path / TOKEN_PRIVATE_KEY_FILE).public_key()))
    assert len(ids) == 6  # five processes and the token key, each a key of its own
    assert ensure_secrets(tmp_path) == []


def restored(seq: int, *, replaced: dict | None = None) -> dict:
    """The checkpoint `rehab restore` signs over the trail it put back."""
    return checkpoints.sign(KEY, process="intake", seq=seq, hash=HASHES.get(seq, ""), count=seq, at=NOW,
                            restored={"backup_made": "2026-12-01T11:00:00+00:00", "replaced": replaced})


def test_a_restore_s_checkpoint_is_signed_like_any_and_shows_the_restore() -> None:
    checkpoint = restored(7, replaced={"seq": 10, "hash": HASHES[10], "at": NOW.isoformat()})
    assert checkpoints.signature_valid(checkpoint, KEY.public_key(), process="intake")
    forged = {**checkpoint, "restored": {**checkpoint["restored"], "backup_made": "2026-11-01T00:00:00+00:00"}}
    assert not checkpoints.signature_valid(forged, KEY.public_key(), process="intake")
    verdict = judge(checkpoint, hashes={seq: HASHES[seq] for seq in range(1, 9)})  # and one entry since
    assert verdict["ok"] is True and verdict["checkpoint"]["restored"]["replaced"]["seq"] == 10
    # An empty trail put back: whatever is written since goes on from it.
    assert judge(restored(0), hashes={})["ok"] is True
    assert judge(restored(0))["ok"] is True


def test_every_checkpoint_after_a_restore_names_it_so_a_verdict_from_the_newest_alone_says_so() -> None:
    """A trail cut, then signed as restored, was said intact by the auditor's verification once the process had
    signed its next checkpoint, with no word of the restore (an outside review's find): each later checkpoint names
    the newest restore, under the signature, and the verdict shows it."""
    restore = restored(7)
    mark = checkpoints.restore_named_by(restore)
    assert mark == {"backup_made": "2026-12-01T11:00:00+00:00", "at": NOW.isoformat()}
    later = checkpoints.sign(KEY, process="intake", seq=9, hash=HASHES[9], count=9, at=NOW, last_restore=mark)
    assert checkpoints.signature_valid(later, KEY.public_key(), process="intake")
    assert checkpoints.restore_named_by(later) == mark  # and carried on from it to the next
    unsaid = {k: v for k, v in later.items() if k != checkpoints.LAST_RESTORE}
    assert not checkpoints.signature_valid(unsaid, KEY.public_key(), process="intake"), "not taken out unseen"
    verdict = judge(later)
    assert verdict["ok"] is True and verdict["checkpoint"]["last_restore"] == mark
    assert judge(signed(9))["checkpoint"]["last_restore"] is None


def test_the_checkpoints_a_restore_replaced_are_those_past_the_trail_it_put_back() -> None:
    history = [signed(3), signed(6), signed(9), restored(6), signed(8), restored(0), signed(2)]
    # 9 is past the first restore's 6; everything before the second restore past its empty trail.
    assert checkpoints.replaced_by_restore(history) == {0, 1, 2, 3, 4}
    assert checkpoints.replaced_by_restore([signed(3), signed(6), restored(6)]) == set()
    assert checkpoints.replaced_by_restore([signed(3), signed(6)]) == set()


def test_a_restore_s_checkpoint_of_an_empty_trail_is_nothing_to_find_in_the_trail_later() -> None:
    """Restored twice from backups of an empty trail: the first restore's checkpoint (seq 0) was looked for in the
    trail at the second's verification, and `rehab audit verify` said entries were cut where none ever were."""
    assert checkpoints.to_find_in_the_trail([restored(0), restored(0)]) == []
    history = [signed(3), restored(0), signed(2), signed(6)]
    assert checkpoints.to_find_in_the_trail(history) == [2]  # 3 was replaced, the empty trail has nothing to find
    assert checkpoints.to_find_in_the_trail([signed(3), signed(6), signed(9)]) == [0, 1]
