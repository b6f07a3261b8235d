"""The staff web console, served by the gateway (templates, static assets, messages in be/ru/en), and the partner
console for partner staff (partner.py, also in pl/lt). `router` holds what every page stands on (the visit, its
session and language, asking the services, refusals in words, break-glass reasons) and the pages of signing in; each
role's pages are a module of their own: cases.py (caseworkers), caseload.py (supervisors), finance.py, admin.py,
partners_admin.py, audit_pages.py, programme.py (coordinators), partner.py."""

from gateway.console.admin import router as admin_router
from gateway.console.audit_pages import router as audit_router
from gateway.console.caseload import router as caseload_router
from gateway.console.cases import router as cases_router
from gateway.console.error_pages import install as install_error_pages
from gateway.console.error_pages import failure_page, refused_address
from gateway.console.estimates import router as estimates_router
from gateway.console.finance import router as finance_router
from gateway.console.partner import router as partner_router
from gateway.console.partners_admin import router as partners_admin_router
from gateway.console.programme import router as programme_router
from gateway.console.referral_thread import router as referral_router
from gateway.console.router import RenewedSessionCookies, router

__all__ = ["RenewedSessionCookies", "admin_router", "audit_router", "caseload_router", "cases_router",
           "estimates_router", "failure_page", "finance_router", "install_error_pages", "partner_router",
           "partners_admin_router", "programme_router", "referral_router", "refused_address", "router"]
