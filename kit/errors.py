"""What a use case or a domain rule refuses, in the domain's words. Use cases and domain functions raise these and
know nothing of HTTP; `kit.problems` answers each kind with its one status (the only place that maps them).

`code` is the stable name a client can branch on (`case-closed`, `grant-code-taken`); it becomes the problem's
`type`. `detail` is for a person to read and never quotes personal data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RefusalEntry:
    """What a refused authorisation leaves in the trail: who was refused, the action's word, about which record."""

    actor: str
    action: str
    target_id: str | None


class DomainError(Exception):
    # The entry a refusal is to leave in the audit trail (kit.audit.refusal_recorded): a refused authorisation
    # (`Refused`), or a refused step an auditor must see tried (paying what is paid already).
    audit_entry: RefusalEntry | None = None

    def __init__(self, detail: str, *, code: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.extra = extra


class NotFound(DomainError):
    """The thing named does not exist (or the caller may not know that it does)."""


class Conflict(DomainError):
    """The thing exists, but its state does not allow this now (closed, already paid, taken)."""


class NotYet(Conflict):
    """The state does not allow this yet, and will without the caller changing anything (a case whose event from
    another service is on its way): the same request may succeed in a moment, so the answer to an Idempotency-Key is
    not kept (kit.idempotency) and a retry with the same key is done again."""


class Invalid(DomainError):
    """The request is well formed, but its values break a rule (a currency that is not the grant's)."""


class Refused(DomainError):
    """A rule of duties forbids this person this action on this thing (four-eyes, need-to-know, a role). Where the
    refusal is to leave an entry in the audit trail, it carries it (`audit_entry`, set by kit.audit.refusal_recorded
    or kit.auth's role checks): the unit it was raised in rolls back, so the service's answer writes it after."""


class Stale(DomainError):
    """The caller's copy is out of date (If-Match no longer matches)."""


class BadCursor(DomainError):
    """A page cursor this API did not give out."""

    def __init__(self) -> None:
        super().__init__("The cursor is not one this API gave out.", code="invalid-cursor")


class Unreadable(DomainError):
    """Stored data could not be decrypted: an incident, logged by id; the caller learns only that."""


class Unavailable(DomainError):
    """Something this needs cannot be had right now (keys sealed, the key service away): try again later."""

    retry_after = 5


class Sealed(Unavailable):
    """The keys are sealed (`rehab seal`): nothing that needs a key is done until `rehab unseal`."""

    retry_after = 30

    def __init__(self) -> None:
        super().__init__("The keys are sealed: this needs a key. An operator unseals them with `rehab unseal`.",
                         code="sealed")


class PassphraseNeeded(Sealed):
    """Under `sealed` custody, an operator's command with no way to be told the unseal passphrase (no terminal, no
    UNSEAL_PASSPHRASE_FILE): the keys it opens are sealed to it, whatever the running system's state."""

    def __init__(self) -> None:
        DomainError.__init__(self, "This command needs the unseal passphrase (custody `sealed`): run it on a "
                                   "terminal, or name a file holding it in UNSEAL_PASSPHRASE_FILE.",
                             code="passphrase-needed")


class PassphraseNotOpening(Sealed):
    """Under `sealed` custody, an operator's command given a passphrase that does not open the keys, or a file
    (UNSEAL_PASSPHRASE_FILE) that is not there."""

    def __init__(self) -> None:
        DomainError.__init__(self, "That unseal passphrase does not open the keys (custody `sealed`): check the file "
                                   "UNSEAL_PASSPHRASE_FILE names, or type it again.", code="passphrase-wrong")


class KeysUnavailable(Unavailable):
    """The key service (OpenBao) did not answer in time, or refused: the keys are there, only out of reach."""

    def __init__(self, detail: str = "The key service does not answer; try again shortly.") -> None:
        super().__init__(detail, code="keys-unavailable")
