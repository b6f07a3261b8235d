"""Separation of duties (SPEC §2): with two or more admins, what one admin asks for — an account, a role granted,
an account enabled again, a partner client — takes effect only when another admin approves it. Approving one's
own request is refused, and so is a second account minted to approve it: that account is itself pending.

Approving a new account or partner API client shows the approving admin its activation code, once
(gateway.activation): the requesting admin holds the account's first password or the client's setup secret, and
neither half alone sets the account up or gets the client a token.

Disabling an admin acts at once (against a stolen account), but asks for a confirmation all the same: until another
admin or the operator gives it, the disabled admin still counts as one who checks, so an admin who disables the only
other admin still cannot grant anything alone. Rejecting it enables the account again.

Use cases of the gateway's database: functions of a session that never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlmodel import Session, select

from gateway import activation, domain, events, mfa, sessions
from gateway.models import ApiClient, Approval, ApprovalPublic, User
from kit.audit import AuditTrail
from kit.db import get_or_raise
from kit.errors import Conflict, NotFound, Refused
from kit.pagination import keyset_page

Action = Literal["user.create", "user.roles", "user.enable", "user.disable", "user.reset_mfa", "client.create"]


def request(*, session: Session, audit: AuditTrail, action: Action, target_id: str, actor: str,
            roles: list[str] | None = None) -> Approval:
    """Ask another admin to approve `action` on `target_id`. The same change asked again while pending (a retry, a
    second click) is that request, not another for the other admin to puzzle over; a different change of the same
    target (other roles) is a request of its own, and each stays until decided."""
    already = session.exec(select(Approval).where(
        Approval.action == action, Approval.target_id == target_id, Approval.status == "pending")).all()
    same = next((pending for pending in already if pending.roles == roles), None)
    if same is not None:
        return same
    asked = Approval(id=str(uuid.uuid4()), action=action, target_id=target_id, roles=roles, requested_by=actor,
                     requested_at=_now())
    session.add(asked)
    audit.record(session, actor=actor, action="approval.request", target_id=asked.id)
    return asked


@dataclass(frozen=True)
class Decision:
    """A decided request; for an approved new account or partner API client, its activation code
    (gateway.activation), to show once."""

    approval: Approval
    activation_code: str | None = None


def decide(*, session: Session, audit: AuditTrail, approval_id: str, actor: str, approve: bool) -> Decision:
    """Approve (the change takes effect now) or reject a pending request of another admin; or withdraw one's own
    (a rejection by its author): a request whose other admin is gone would otherwise wait for ever, its user name
    taken."""
    asked = get_or_raise(session, Approval, approval_id, NotFound("There is no such request.",
                                                                   code="approval-not-found"), lock=True)
    if asked.status != "pending":
        raise Conflict(f"This request was already {asked.status}.", code="approval-decided")
    withdrawn = asked.requested_by == actor
    if withdrawn and approve:
        raise Refused("Nobody approves their own request: another admin must.", code="own-request")
    if approve and asked.action == "user.reset_mfa" and _gave_first_password(session, asked.target_id, actor):
        # Approving it shows a new activation code: the same admin would then hold the account's first password
        # and its code, and could set it up as its person (gateway.activation).
        raise Refused("You gave this account its first password, and it was never set up: another admin approves "
                      "its factor reset and is shown its new activation code.", code="own-account-code")
    code = None
    if approve:
        code = _apply(session, audit, asked, actor)
    else:
        _undo(session, audit, asked, actor)
    asked.status, asked.decided_by, asked.decided_at = ("approved" if approve else "rejected"), actor, _now()
    session.add(asked)
    audit.record(session, actor=actor, target_id=asked.id,
                 action="approval.approve" if approve else "approval.withdraw" if withdrawn else "approval.reject")
    return Decision(asked, code)


def _gave_first_password(session: Session, user_id: str, actor: str) -> bool:
    """Whether `actor` asked for this account, which still waits for its person to set it up (its code unused)."""
    user = session.get(User, user_id)
    if user is None or user.activation_hash is None:
        return False
    return session.exec(select(Approval.id).where(Approval.action == "user.create", Approval.target_id == user_id,
                                                  Approval.requested_by == actor)).first() is not None


def admins_disabled_unconfirmed(*, session: Session) -> set[str]:
    """The admins disabled by another admin whose disabling no third admin (nor the operator) has confirmed."""
    asked = session.exec(select(Approval.target_id).where(Approval.action == "user.disable",
                                                          Approval.status == "pending")).all()
    if not asked:
        return set()
    users = session.exec(select(User).where(User.id.in_(set(asked)), User.disabled == True)).all()  # noqa: E712
    return {user.id for user in users if "admin" in user.roles}


def confirm_disabling(*, session: Session, audit: AuditTrail, user: User, actor: str) -> None:
    """The operator, from the machine, confirms an admin's disabling that waits for a confirmation."""
    for asked in _disabling(session, user.id):
        asked.status, asked.decided_by, asked.decided_at = "approved", actor, _now()
        session.add(asked)
        audit.record(session, actor=actor, action="approval.approve", target_id=asked.id)


def close_disabling(*, session: Session, user: User, actor: str) -> None:
    """The account is enabled again: a disabling still waiting for its confirmation has nothing left to confirm."""
    for asked in _disabling(session, user.id):
        asked.status, asked.decided_by, asked.decided_at = "rejected", actor, _now()
        session.add(asked)


def _disabling(session: Session, user_id: str) -> list[Approval]:
    return list(session.exec(select(Approval).where(Approval.action == "user.disable", Approval.status == "pending",
                                                    Approval.target_id == user_id)).all())


def list_page(*, session: Session, status: str | None, limit: int, cursor: str | None) -> tuple[list[Approval], str | None]:
    query = select(Approval)
    if status:
        query = query.where(Approval.status == status)
    return keyset_page(session, query, order=[Approval.requested_at, Approval.id], limit=limit, cursor=cursor,
                       descending=True)


def shown(*, session: Session, asked: list[Approval]) -> list[ApprovalPublic]:
    """Approvals as an admin reads them: whom each is about (the account's name and roles, the client's name and
    partner) and who asked and decided, by name; two queries for a page, whatever its length."""
    user_ids = {a.target_id for a in asked if a.action.startswith("user.")} | {a.requested_by for a in asked} | {
        a.decided_by for a in asked if a.decided_by}
    users = {u.id: u for u in session.exec(select(User).where(User.id.in_(user_ids))).all()} if user_ids else {}
    client_ids = {a.target_id for a in asked if a.action.startswith("client.")}
    clients = {c.client_id: c for c in session.exec(select(ApiClient).where(
        ApiClient.client_id.in_(client_ids))).all()} if client_ids else {}
    answer = []
    for approval in asked:
        about = {}
        if (user := users.get(approval.target_id)) is not None and approval.action.startswith("user."):
            about = {"target_name": user.username, "target_roles": list(user.roles), "partner_id": user.partner_id}
        elif (client := clients.get(approval.target_id)) is not None:
            about = {"target_name": client.name, "partner_id": client.partner_id}
        requester, decider = users.get(approval.requested_by), users.get(approval.decided_by or "")
        answer.append(ApprovalPublic.model_validate(approval, from_attributes=True).model_copy(update={
            **about, "requested_by_username": requester.username if requester else None,
            "decided_by_username": decider.username if decider else None}))
    return answer


def awaits_confirmation(*, session: Session, user_id: str) -> bool:
    """Whether an admin's disabling still waits for another admin's (or the operator's) confirmation."""
    return bool(_disabling(session, user_id))


def apply_roles(*, session: Session, audit: AuditTrail, user: User, roles: list[str], actor: str) -> User:
    wanted = domain.normalise_roles(roles)
    changed = wanted != domain.normalise_roles(user.roles)
    user.roles = wanted
    session.add(user)
    audit.record(session, actor=actor, action="user.roles", target_id=user.id)
    if changed and not user.pending_approval:  # a pending account is announced, with its roles, once it takes effect
        events.user_changed(session, events.USER_ROLES_CHANGED, user)
    return user


def apply_factor_reset(*, session: Session, audit: AuditTrail, user: User, actor: str) -> None:
    mfa.reset(session=session, user_id=user.id)
    sessions.revoke_all(session=session, audit=audit, user_id=user.id, actor=actor, now=_now(), why="mfa-reset")
    audit.record(session, actor=actor, action="mfa.reset", target_id=user.id)


def _apply(session: Session, audit: AuditTrail, asked: Approval, actor: str) -> str | None:
    """Put the approved change in force; a new account's or client's activation code, made here for the approving
    admin."""
    if asked.action == "client.create":
        client = _client(session, asked.target_id)
        client.pending_approval = False
        code = None
        if client.revoked_at is None and client.activated_at is None:
            code = activation.new_code()
            client.activation_hash = activation.digest(code)
        session.add(client)
        return code
    user = get_or_raise(session, User, asked.target_id, NotFound("The account asked about is gone.",
                                                                  code="user-not-found"), lock=True)
    code = None
    if asked.action == "user.create":
        user.pending_approval = False
        code = activation.new_code()
        user.activation_hash = activation.digest(code)
        events.user_changed(session, events.USER_CREATED, user)
        if user.disabled:  # disabled while it waited: the services learn both
            events.user_changed(session, events.USER_DISABLED, user)
    elif asked.action == "user.enable":
        was_disabled = user.disabled
        user.disabled = False
        close_disabling(session=session, user=user, actor=actor)
        audit.record(session, actor=actor, action="user.enable", target_id=user.id)
        if was_disabled and not user.pending_approval:
            events.user_changed(session, events.USER_ENABLED, user)
    elif asked.action == "user.disable":
        pass  # confirmed: the account stays disabled, and no longer counts among the admins who check
    elif asked.action == "user.reset_mfa":
        apply_factor_reset(session=session, audit=audit, user=user, actor=actor)
        if user.activation_hash is not None:  # never set up, its code lost: a new one, for this approving admin
            code = activation.new_code()
            user.activation_hash = activation.digest(code)
    elif asked.action == "user.roles":
        if user.id == actor:
            raise Refused("No one changes their own roles: another admin must.", code="own-roles")
        apply_roles(session=session, audit=audit, user=user, roles=asked.roles or [], actor=actor)
    session.add(user)
    return code


def _undo(session: Session, audit: AuditTrail, asked: Approval, actor: str) -> None:
    """A rejected account or client never worked: it goes (a rejected role change or enabling changes nothing); a
    rejected disabling enables the admin again."""
    if asked.action == "user.disable":
        user = session.get(User, asked.target_id)
        if user is not None and user.disabled:
            user.disabled = False
            session.add(user)
            audit.record(session, actor=actor, action="user.enable", target_id=user.id)
            events.user_changed(session, events.USER_ENABLED, user)
    elif asked.action == "user.create":
        user = session.get(User, asked.target_id)
        if user is not None and user.pending_approval:
            session.delete(user)
    elif asked.action == "client.create":
        client = session.get(ApiClient, asked.target_id)
        if client is not None and client.pending_approval:
            client.revoked_at = _now()
            session.add(client)


def _client(session: Session, client_id: str) -> ApiClient:
    return get_or_raise(session, ApiClient, client_id, NotFound("The client asked about is gone.",
                                                                code="client-not-found"))


def _now() -> datetime:
    return datetime.now(UTC)
