"""A caseworker's day in a real browser (headless Debian chromium driven by Playwright, against the gateway over HTTP
in front of every service), with the production default that every person signs in with a second factor: open a new
case (its safety notes first on its page), write a note, give oneself a task due today (home lists it under "due
today"), upload a phone photo that says where it was taken and download it without that, move a need to in progress
and to met, ask for aid from the case, close the case and reopen it; then edit it in two tabs at once, and the second
save meets a conflict page that keeps what was typed. The whole case page is photographed in English, Russian and
Belarusian into test-artifacts/console/ (50-…) for a human to look at: nothing untranslated, nothing sticking out.

Skips, saying why, where chromium or the playwright package is absent (the imported module skips)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import ExifTags, Image

from tests.console import test_console_browser
from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, shot, sync_api
from tests.console.test_console_browser_doors import (  # noqa: F401 (gateway_settings: the fixture, narrowed)
    PHONE,
    ApiWithFactor,
    fits_the_screen,
    gateway_settings,
    sign_in,
    watch_outside,
)
from tests.integration.gateway.door import STAFF_PASSWORD

pytestmark = pytest.mark.integration

served = test_console_browser.served  # the fixture: the gateway over real HTTP, in front of every service
expect = sync_api.expect
DESK = {"width": 1100, "height": 1000}
NAME = "Аксана Мілевіч"
SAFETY = "Quietvale: never call before 10:00, her phone is checked at the border"
NOTE = "Quietvale: she found a flat in Vilnius, moving on Friday"
TITLE = "Quietvale: call back about the dentist"
PURPOSE = "Quietvale: dentist, two fillings"


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: the camera, the time, and where it was taken (GPS)."""
    image = Image.new("RGB", (320, 240))
    image.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(240) for x in range(320)])
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "QuietvalePhone"
    exif[ExifTags.Base.DateTime] = "2026:11:03 10:11:12"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (53.0, 54.0, 7.0),
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (27.0, 33.0, 41.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92)
    return out.getvalue()


class Desk(ApiWithFactor):
    """The day's setup that is not the caseworker's job, through the public API: finance and its grant, a partner
    and its API client (who answers the referral)."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        finance = self.user("finance")
        self.finance = self.bearer_with_code(finance, STAFF_PASSWORD, self.enrolled(finance)[0])
        self.grant = self.post("/api/funds/grants", self.finance, donor="Solidarity Fund",
                               code=f"G-{uuid.uuid4().hex[:6]}", currency="EUR", amount="5000.00",
                               starts_on="2026-01-01", ends_on="2030-12-31", categories=["medical", "housing"])
        self.partner = self.post("/api/referrals/partners", self.admin, name="Vilnius Dental Clinic",
                                 category="medical", countries=["LT"], cities=["Vilnius"], languages=["be"],
                                 contact_email="intake@dental.example")
        client = self.post("/api/admin/clients", self.admin, partner_id=self.partner["id"], name="Dental API")
        activated = self.http.post("/auth/clients/activate", data={"client_id": client["client_id"],
                                                                   "client_secret": client["client_secret"]})
        assert activated.status_code == 200, activated.text  # the lone admin's client: its setup secret alone
        token = self.http.post("/auth/token", data={"grant_type": "client_credentials",
                                                     "client_id": client["client_id"],
                                                     "client_secret": activated.json()["client_secret"]})
        assert token.status_code == 200, token.text
        self.partner_api = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def partner_completes(self, referral_id: str) -> None:
        for step, body in (("accept", None), ("start", None), ("complete", {
                "outcome": "Two fillings done; next check-up in six months",
                "cost_estimate": {"amount": "180.00", "currency": "EUR"}})):
            moved = self.http.post(f"/api/partner/referrals/{referral_id}/{step}", headers=self.partner_api,
                                   json=body)
            assert moved.status_code == 200, moved.text

    def finance_pays(self, disbursement_id: str) -> None:
        for step, body in (("approve", None), ("pay", {"method": "bank_transfer", "reference": "TX-2026-77"})):
            moved = self.http.post(f"/api/funds/disbursements/{disbursement_id}/{step}", json=body,
                                   headers={**self.finance, "Idempotency-Key": str(uuid.uuid4())})
            assert moved.status_code == 200, moved.text


def test_a_caseworker_s_day_from_a_new_case_to_an_edit_conflict_in_a_real_browser(served: str, tmp_path: Path):
    desk = Desk(served)
    casey = desk.user("caseworker")
    codes = desk.enrolled(casey)
    outside: list[str] = []
    asked: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=DESK, accept_downloads=True)
            page = context.new_page()
            watch_outside(page, served, outside)
            page.on("request", lambda request: asked.append(request.url))
            sign_in(page, served, casey, code=codes.pop(0))
            page.wait_for_url(served + "/console/cases")

            # A new case, every field typed at intake.
            page.goto(served + "/console/cases/new")
            page.get_by_label("Country", exact=True).select_option(label="Lithuania")  # picked by its name
            for label, value in (("Full name", NAME), ("Date of birth", "1991-05-17"),
                                 ("City", "Vilnius"), ("Languages", "be, ru"), ("Phone", "+370 600 12345"),
                                 ("Signal", "+370 600 12345"), ("Release date", "2025-09-01"),
                                 ("Facility", "IK-4 Gomel"), ("Articles", "342, 361-1"), ("Safety notes", SAFETY)):
                page.get_by_label(label, exact=label in ("City", "Phone", "Signal")).fill(value)
            page.get_by_role("button", name="Save", exact=True).click()
            page.get_by_role("link", name="Open the case").click()
            page.wait_for_selector("#person")
            assert "Lithuania" in page.locator("#person").inner_text()  # the country picked, as it was named
            case_path = page.url.removeprefix(served)
            case_id = case_path.rsplit("/", 1)[1]
            safety = page.locator("#safety")
            expect(safety).to_contain_text(SAFETY)
            assert safety.bounding_box()["y"] < page.locator("#person").bounding_box()["y"]  # read before calling
            for value in ("17 May 1991", "+370 600 12345", "IK-4 Gomel", "342, 361-1", "1 Sep 2025"):
                expect(page.locator("#person")).to_contain_text(value)

            # A note, and a task due today that home then lists first.
            page.get_by_label("New note").fill(NOTE)
            page.get_by_role("button", name="Add note").click()
            expect(page.locator("#notes .notes")).to_contain_text(NOTE)
            page.get_by_label("Task", exact=True).fill(TITLE)
            page.get_by_role("button", name="Add task").click()
            expect(page.locator("#tasks table")).to_contain_text(TITLE)
            page.goto(served + "/")
            page.wait_for_url(served + "/console/cases")
            expect(page.locator("#due-tasks")).to_contain_text(TITLE)
            page.locator("#due-tasks").get_by_role("link").first.click()
            page.wait_for_url(served + case_path)

            # Consent, so that the clinic may be sent a referral; the clinic answers through its API.
            page.locator("#consent").get_by_label("Medical", exact=True).check()
            page.get_by_role("button", name="Record consent").click()
            expect(page.locator("#consent-history li")).to_have_count(1)
            casey_api = desk.bearer_with_code(casey, STAFF_PASSWORD, codes.pop(0))
            referral = desk.until_created("/api/referrals/referrals", casey_api, {
                "case_id": case_id, "partner_id": desk.partner["id"], "need_category": "medical",
                "packet": {"display_name": "A. M."}})
            desk.partner_completes(referral["id"])

            # A phone photo of the release certificate: stored without where and when it was taken.
            page.locator("#document-file").set_input_files(
                {"name": "certificate.jpg", "mimeType": "image/jpeg", "buffer": phone_photo()})
            page.get_by_label("Kind").select_option("release")
            page.get_by_role("button", name="Upload").click()
            expect(page.locator("#documents")).to_contain_text("certificate.jpg")
            with page.expect_download() as downloading:
                page.locator("#documents").get_by_role("link", name="Download").first.click()
            downloaded = Path(downloading.value.path()).read_bytes()
            photo = Image.open(io.BytesIO(downloaded))
            assert photo.size == (320, 240) and not photo.getexif().get_ifd(ExifTags.IFD.GPSInfo)
            assert len(photo.getexif()) == 0 and b"Exif" not in downloaded and b"QuietvalePhone" not in downloaded

            # A need, from open to in progress to met.
            page.locator("#need-category").select_option("medical")
            page.locator("#need-urgency").select_option("high")
            page.get_by_role("button", name="Add need").click()
            need = page.locator("#needs li").first
            need.get_by_role("button", name="Start work").click()
            expect(page.locator("#needs li").first).to_contain_text("in progress")
            page.locator("#needs li").first.get_by_role("button", name="Mark met").click()
            expect(page.locator("#needs li").first.locator(".status")).to_have_text("met")
            expect(page.locator("#needs li").first.get_by_role("button")).to_have_count(0)

            # Aid from the case: a dentist's bill; finance approves and pays it.
            page.get_by_label("Amount").fill("250")
            page.get_by_label("Purpose").fill(PURPOSE)
            page.locator("#aid-category").select_option("medical")
            page.get_by_role("button", name="Send the request").click()
            expect(page.locator("#disbursement-list")).to_contain_text("€250.00")
            aid_id = page.locator("#disbursement-list tbody tr").first.get_attribute("id").removeprefix("aid-")
            desk.finance_pays(aid_id)

            # Closed at the end of the day, and reopened when she calls back.
            page.locator("#close-case summary").click()  # closing asks once more
            page.get_by_role("button", name="Yes, close the case").click()
            expect(page.locator("h1 .status")).to_have_text("closed")
            # Closed, the case takes no new consent; the person may still withdraw theirs.
            expect(page.locator("#consent-withdraw-only")).to_be_visible()
            expect(page.locator("#consent form.stack")).to_have_count(0)
            page.locator("#consent").scroll_into_view_if_needed()
            shot(page, "46-closed-case-consent")
            page.get_by_role("button", name="Reopen the case").click()
            expect(page.locator("h1 .status")).to_have_text("open")

            # The same case edited in two tabs: the second save meets what the first saved, and loses nothing.
            first, second = page, context.new_page()
            watch_outside(second, served, outside)
            second.on("request", lambda request: asked.append(request.url))
            for tab in (first, second):
                tab.goto(served + case_path + "/edit")
            first.get_by_label("City", exact=True).fill("Kaunas")
            first.get_by_role("button", name="Save changes").click()
            first.wait_for_url(served + case_path)
            second.get_by_label("City", exact=True).fill("Riga")
            second.get_by_label("Facility").fill("IK-15 Navapolatsk")
            second.get_by_role("button", name="Save changes").click()
            expect(second.locator("#conflict")).to_be_visible()
            row = second.locator("#conflict-city")
            expect(row.locator(".stored")).to_have_text("Kaunas")
            expect(row.locator(".typed")).to_have_text("Riga")
            assert second.get_by_label("City", exact=True).input_value() == "Riga"
            assert second.get_by_label("Facility").input_value() == "IK-15 Navapolatsk"
            shot(second, "50-edit-conflict")
            assert fits_the_screen(second)
            second.get_by_role("button", name="Save changes").click()  # a choice made seeing both
            second.wait_for_url(served + case_path)
            expect(second.locator("#person")).to_contain_text("Riga")
            second.close()

            # The whole story, in each language: every value and every step in words, nothing sticking out.
            page.goto(served + case_path)
            expect(page.locator("#referral-list")).to_contain_text("Two fillings done")
            expect(page.locator("#referral-list")).to_contain_text("€180.00")
            expect(page.locator("#aid-totals")).to_contain_text("€250.00")
            expect(page.locator("#consent-history")).to_contain_text(casey)
            for language, words in (("en", ("Case opened", "Need moved", "Aid paid", "Referral completed")),
                                    ("ru", ("Дело открыто", "Потребность изменена", "Помощь выплачена")),
                                    ("be", ("Справа адкрыта", "Патрэба зменена", "Дапамога выплачана"))):
                page.goto(served + f"/console/language/{language}?next={case_path}")
                page.wait_for_url(served + case_path)
                timeline = page.locator("ol.timeline").inner_text()
                assert all(word in timeline for word in words), (language, timeline)
                assert not [kind for kind in ("case.", "needs.", "referral.", "disbursement.", "(intake)")
                            if kind in timeline], (language, timeline)
                shot(page, f"51-case-page-{language}")
                assert fits_the_screen(page)
            page.set_viewport_size(PHONE)  # Belarusian on a phone: the longest words on the narrowest screen
            shot(page, "52-case-page-be-phone")
            assert fits_the_screen(page)
        finally:
            browser.close()

    assert outside == []  # nothing loaded from outside the system
    assert not [url for url in asked if "quietvale" in unquote(url).lower() or "riga" in unquote(url).lower()]
