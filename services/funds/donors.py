"""A grant's donor, sealed. A donor may be a person, and in Belarus giving to a group branded "extremist" is itself
prosecuted: a donor's name is kept like a case's personal details, under a data key of the grant's own (wrapped by
the KEK, beside it in `grants`; `models.WRAPPED_KEYS` names it, so `rehab keys rotate` re-wraps it). The associated
data binds the ciphertext to this table, its column and the grant's id.

Grants made before donors were sealed kept the name in clear: funds seals them once it runs
(`older_in_clear.seal_in_background`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from kit import crypto
from kit.db import scrub_after_commit
from services.funds.models import Grant

TABLE, COLUMN = "grants", "donor"
SEALED = ""  # what the clear column holds once the donor is sealed (it is NOT NULL since the first revision)



def seal(keyring: crypto.Keyring, grant: Grant, donor: str) -> None:
    """Put `donor` on the grant, sealed under a fresh data key of its own."""
    key, wrapped = keyring.new_wrapped_data_key()
    grant.donor_kid, grant.donor_key = wrapped.kid, wrapped.blob
    grant.donor_sealed = crypto.seal(key, donor.encode(), crypto.aad(TABLE, COLUMN, grant.id))
    grant.donor = SEALED


def donor(keyring: crypto.Keyring, grant: Grant) -> str:
    """The grant's donor, opened (in clear only for a grant made before donors were sealed, until funds starts)."""
    if grant.donor_sealed is None or grant.donor_kid is None or grant.donor_key is None:
        return grant.donor
    key = keyring.unwrap(crypto.WrappedKey(grant.donor_kid, grant.donor_key))
    return crypto.open_sealed(key, grant.donor_sealed, crypto.aad(TABLE, COLUMN, grant.id)).decode()


def seal_clear(session: Session, keyring: crypto.Keyring) -> int:
    """Seal every donor still in clear (grants made before this), in one transaction: how many."""
    still_clear = select(Grant).where(Grant.donor_sealed.is_(None))  # type: ignore[union-attr]
    grants = session.execute(still_clear).scalars().all()
    for grant in grants:
        seal(keyring, grant, grant.donor)
        session.add(grant)
    if grants:  # the rows' old images, with the names in clear, leave SQLite's write-ahead log too
        scrub_after_commit(session)
    return len(grants)
