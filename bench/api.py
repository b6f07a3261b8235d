"""A small client of the public API (SPEC §3–§4), for setting a benchmark up: users, a partner, a grant."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

PASSWORD = "Bench-user-passphrase-2026"


class ApiError(RuntimeError):
    """An answer the setup did not expect: the benchmark cannot go on, and says which call failed."""


class Client:
    """One signed-in caller of the gateway."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.http = httpx.Client(base_url=base_url, headers=self.auth, timeout=30, trust_env=False)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        answer = self.http.request(method, path, **kwargs)
        if answer.status_code not in expect:
            raise ApiError(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json() if answer.content else None

    def close(self) -> None:
        self.http.close()


def sign_in(base_url: str, username: str, password: str) -> Client:
    answer = httpx.post(base_url + "/auth/token", data={"grant_type": "password", "username": username,
                                                       "password": password}, timeout=30, trust_env=False)
    if answer.status_code != 200:
        raise ApiError(f"signing in as {username} answered {answer.status_code}: {answer.text[:300]}")
    return Client(base_url, answer.json()["access_token"])


def staff(base_url: str, admin_password: str, roles_by_user: dict[str, list[str]]) -> dict[str, Client]:
    """Sign in as the first admin, create the given users, and sign each of them in."""
    admin = sign_in(base_url, "admin", admin_password)
    signed_in = {"admin": admin}
    for username, roles in roles_by_user.items():
        admin.call("POST", "/api/admin/users", json={"username": username, "password": PASSWORD, "roles": roles})
        signed_in[username] = sign_in(base_url, username, PASSWORD)
    return signed_in


def clinic(admin: Client) -> dict[str, Any]:
    """A medical partner in the directory."""
    return admin.call("POST", "/api/referrals/partners", json={
        "name": f"Bench Clinic {uuid.uuid4().hex[:6]}", "category": "medical", "countries": ["LT"],
        "cities": ["Vilnius"], "languages": ["be", "ru"], "contact_email": "intake@clinic.example"})


def grant(finance: Client, amount: str = "100000000.00") -> dict[str, Any]:
    """A large EUR grant for medical aid, open for years: approvals never run short of money."""
    return finance.call("POST", "/api/funds/grants", json={
        "donor": "Bench Fund", "code": f"BENCH-{uuid.uuid4().hex[:8]}", "currency": "EUR", "amount": amount,
        "starts_on": "2020-01-01", "ends_on": "2099-12-31", "categories": ["medical", "financial"]})


MEDICAL_CONSENT = {"categories": ["medical"], "share_contact": False, "share_health": False, "method": "written",
                   "expires_on": None}
