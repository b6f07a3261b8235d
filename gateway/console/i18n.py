"""The console's words in Belarusian, Russian and English, and dates and money written as each locale writes them.
The partner console (partner.py), and the sign-in and second-factor pages partner staff pass through, are also in
Polish and Lithuanian (`_PARTNER_MESSAGES`, at the end); staff pages offer be/ru/en only, and show English to staff
who chose pl or lt on the sign-in page (`router.render`).

Dates, numbers and money go through Babel, by CLDR's rules for each locale (be/ru: "1 234,50 €", "23.11.2026";
en: "€1,234.50", "23 Nov 2026"; pl: "1234,50 zł", "12 345,50 zł", "3.11.2026, 14:05"; lt: "1 234,50 €",
"2026-11-03 14:05")."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers

STAFF_LANGUAGES = ("be", "ru", "en")  # every page of the console
LANGUAGES = (*STAFF_LANGUAGES, "pl", "lt")  # pl, lt: the partner console, sign-in and the second factor
DEFAULT = "en"
LANGUAGE_NAMES = {"be": "Беларуская", "ru": "Русский", "en": "English", "pl": "Polski", "lt": "Lietuvių"}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "expired": "Your session has ended; please sign in again.",
        "stale_form": "The sign-in form was out of date; please try again.",
        "app": "Rehab Support", "sign_in": "Sign in", "sign_out": "Sign out", "username": "User name",
        "password": "Password", "bad_credentials": "The user name, password or one-time code is not right.",
        "otp": "One-time code", "otp_help": "From your authenticator app, or one of your recovery codes. Leave it "
        "empty the first time: you will set the app up next.",
        "mfa_title": "Set up your second factor", "mfa_why": "A password alone can be phished or guessed. From now "
        "on you sign in with your password and a code from an app on your phone.",
        "mfa_step_app": "Install an authenticator app (Aegis, FreeOTP, Google Authenticator, 2FAS…).",
        "mfa_step_scan": "Scan this code with it.", "mfa_qr": "QR code of your new second factor",
        "mfa_or_type": "Or type this key into the app:", "mfa_step_code": "Type the six digits the app shows.",
        "mfa_code": "Code from the app", "mfa_confirm": "Confirm",
        "mfa_wrong_code": "That code is not right or has expired. Start again with a new key.",
        "mfa_start_again": "Start again", "mfa_codes_title": "Your recovery codes",
        "mfa_codes_why": "Write these down and keep them somewhere safe, apart from your phone. Each works once, "
        "instead of the app's code, if the phone is lost or taken. They are shown only now.",
        "mfa_sign_in_now": "Sign in now with a code from the app",
        "cases": "Cases", "new_case": "New case", "search_name": "Search by name", "search": "Search",
        "next_page": "Next page",
        "reference": "Reference", "status": "Status", "country": "Country", "opened": "Opened", "no_cases": "No cases.",
        "full_name": "Full name", "other_names": "Other names (one per line)", "date_of_birth": "Date of birth",
        "city": "City", "languages": "Languages (comma-separated, e.g. be, ru)", "phone": "Phone",
        "telegram": "Telegram", "signal": "Signal", "email": "E-mail", "safety_notes": "Safety notes",
        "save": "Save", "created": "Case created", "possible_duplicates": "Possible duplicates: the same person may "
        "already have a case", "open_case": "Open the case",
        "duplicates_before_save": "Nothing is saved yet. These cases have the same date of birth and the name in "
        "another script or spelling. Open them to check (each opens in a new tab); if this is someone else, or a "
        "separate case is needed, save anyway.", "save_anyway": "Save anyway",
        "needs": "Needs", "category": "Category", "urgency": "Urgency", "notes": "Notes", "add_need": "Add need",
        "consent": "Consent", "no_consent": "No consent recorded: nothing may be shared.",
        "share_contact": "Contact details may be shared", "share_health": "Health information may be shared",
        "method": "How consent was given", "verbal": "verbally", "written": "in writing", "expires_on": "Valid until",
        "record_consent": "Record consent", "referrals": "Referrals", "new_referral": "New referral",
        "timeline": "Timeline", "close_case": "Close the case", "erase_case": "Erase the case",
        "erase_title": "Erase this case?", "erase_explained": "Erasure is irreversible. The person's name, contacts, "
        "notes and health information are destroyed for good (their key is deleted) in this and every other service; "
        "only the reference and the status “erased” remain. Nobody can undo this.",
        "erase_confirm": "Yes, erase for ever", "cancel": "Cancel", "partner": "Partner",
        "find_partners": "Find partners",
        "display_name": "Name the partner sees", "language": "Language", "note": "Note for the partner",
        "contact": "Contact for the partner", "how_to_reach": "How to reach the person",
        "health_summary": "Health summary",
        "not_allowed": "The consent does not allow this", "send_referral": "Send the referral",
        "yes": "yes", "no": "no",
        "grants": "Grants", "donor": "Donor", "code": "Code", "budget": "Budget", "committed": "Committed",
        "paid": "Paid", "available": "Available", "report_csv": "Grant report (CSV)", "disbursements": "Disbursements",
        "queue": "Disbursement queue", "amount": "Amount", "requested_at": "Requested", "approve": "Approve",
        "reject": "Reject", "pay": "Pay", "pay_method": "Method", "pay_reference": "Payment reference",
        "own_request": "Your own request: someone else approves it", "nothing_here": "Nothing here.",
        "skip": "Skip to content", "language_choice": "Language", "problem": "Problem",
        "partners_none": "No partner fits.",
        "consent_beside": "Consent in force", "until": "until", "always": "no end date",
    },
    "ru": {
        "expired": "Сеанс завершён; войдите снова.",
        "stale_form": "Форма входа устарела; попробуйте ещё раз.",
        "app": "Rehab Support", "sign_in": "Войти", "sign_out": "Выйти", "username": "Имя пользователя",
        "password": "Пароль", "bad_credentials": "Неверное имя пользователя, пароль или одноразовый код.",
        "otp": "Одноразовый код", "otp_help": "Из приложения-аутентификатора или один из резервных кодов. В первый "
        "раз оставьте пустым: приложение настраивается следующим шагом.",
        "mfa_title": "Настройка второго фактора", "mfa_why": "Пароль можно выманить или подобрать. Теперь вход — "
        "по паролю и коду из приложения на телефоне.",
        "mfa_step_app": "Установите приложение-аутентификатор (Aegis, FreeOTP, Google Authenticator, 2FAS…).",
        "mfa_step_scan": "Отсканируйте им этот код.", "mfa_qr": "QR-код нового второго фактора",
        "mfa_or_type": "Или введите в приложение этот ключ:", "mfa_step_code": "Введите шесть цифр из приложения.",
        "mfa_code": "Код из приложения", "mfa_confirm": "Подтвердить",
        "mfa_wrong_code": "Код неверен или устарел. Начните заново с новым ключом.",
        "mfa_start_again": "Начать заново", "mfa_codes_title": "Ваши резервные коды",
        "mfa_codes_why": "Запишите их и храните отдельно от телефона. Каждый действует один раз вместо кода из "
        "приложения, если телефон потерян или отобран. Они показываются только сейчас.",
        "mfa_sign_in_now": "Войти с кодом из приложения",
        "cases": "Дела", "new_case": "Новое дело", "search_name": "Поиск по имени", "search": "Найти",
        "next_page": "Следующая страница",
        "reference": "Номер", "status": "Статус", "country": "Страна", "opened": "Открыто", "no_cases": "Дел нет.",
        "full_name": "Полное имя", "other_names": "Другие имена (по одному в строке)", "date_of_birth": "Дата рождения",
        "city": "Город", "languages": "Языки (через запятую, напр. be, ru)", "phone": "Телефон",
        "telegram": "Telegram", "signal": "Signal", "email": "Эл. почта", "safety_notes": "Заметки о безопасности",
        "save": "Сохранить", "created": "Дело создано", "possible_duplicates": "Возможные дубликаты: у этого человека "
        "уже может быть дело", "open_case": "Открыть дело",
        "duplicates_before_save": "Пока ничего не сохранено. У этих дел та же дата рождения, а имя записано "
        "другим алфавитом или иначе. Откройте их, чтобы проверить (каждое откроется в новой вкладке); если это "
        "другой человек или нужно отдельное дело, всё равно сохраните.", "save_anyway": "Всё равно сохранить",
        "needs": "Потребности", "category": "Категория", "urgency": "Срочность", "notes": "Заметки",
        "add_need": "Добавить потребность", "consent": "Согласие",
        "no_consent": "Согласие не записано: ничего передавать нельзя.",
        "share_contact": "Можно передавать контакты", "share_health": "Можно передавать сведения о здоровье",
        "method": "Как дано согласие", "verbal": "устно", "written": "письменно", "expires_on": "Действует до",
        "record_consent": "Записать согласие", "referrals": "Направления", "new_referral": "Новое направление",
        "timeline": "История", "close_case": "Закрыть дело", "erase_case": "Стереть дело",
        "erase_title": "Стереть это дело?", "erase_explained": "Стирание необратимо. Имя человека, контакты, заметки и "
        "сведения о здоровье уничтожаются навсегда (их ключ удаляется) в этом и во всех других сервисах; остаются "
        "только номер и статус «стёрто». Отменить это нельзя.",
        "erase_confirm": "Да, стереть навсегда", "cancel": "Отмена", "partner": "Партнёр",
        "find_partners": "Найти партнёров",
        "display_name": "Имя для партнёра", "language": "Язык", "note": "Заметка для партнёра",
        "contact": "Контакт для партнёра", "how_to_reach": "Как связаться с человеком",
        "health_summary": "Сведения о здоровье",
        "not_allowed": "Согласие этого не разрешает", "send_referral": "Отправить направление", "yes": "да",
        "no": "нет",
        "grants": "Гранты", "donor": "Донор", "code": "Код", "budget": "Бюджет", "committed": "Зарезервировано",
        "paid": "Выплачено", "available": "Доступно", "report_csv": "Отчёт по грантам (CSV)",
        "disbursements": "Выплаты", "queue": "Очередь выплат", "amount": "Сумма", "requested_at": "Запрошено",
        "approve": "Одобрить", "reject": "Отклонить", "pay": "Выплатить", "pay_method": "Способ",
        "pay_reference": "Номер платежа", "own_request": "Ваш собственный запрос: одобряет другой сотрудник",
        "nothing_here": "Здесь пусто.", "skip": "К содержанию", "language_choice": "Язык", "problem": "Проблема",
        "partners_none": "Подходящих партнёров нет.", "consent_beside": "Действующее согласие", "until": "до",
        "always": "без срока",
    },
    "be": {
        "expired": "Сеанс скончыўся; увайдзіце зноў.",
        "stale_form": "Форма ўваходу састарэла; паспрабуйце яшчэ раз.",
        "app": "Rehab Support", "sign_in": "Увайсці", "sign_out": "Выйсці", "username": "Імя карыстальніка",
        "password": "Пароль", "bad_credentials": "Няправільнае імя карыстальніка, пароль або аднаразовы код.",
        "otp": "Аднаразовы код", "otp_help": "З праграмы-аўтэнтыфікатара або адзін з рэзервовых кодаў. Першы раз "
        "пакіньце пустым: праграма наладжваецца наступным крокам.",
        "mfa_title": "Наладка другога фактару", "mfa_why": "Пароль могуць выцягнуць або падабраць. Цяпер уваход — "
        "па паролі і кодзе з праграмы на тэлефоне.",
        "mfa_step_app": "Усталюйце праграму-аўтэнтыфікатар (Aegis, FreeOTP, Google Authenticator, 2FAS…).",
        "mfa_step_scan": "Адсканіруйце ёю гэты код.", "mfa_qr": "QR-код новага другога фактару",
        "mfa_or_type": "Або ўвядзіце ў праграму гэты ключ:", "mfa_step_code": "Увядзіце шэсць лічбаў з праграмы.",
        "mfa_code": "Код з праграмы", "mfa_confirm": "Пацвердзіць",
        "mfa_wrong_code": "Код няправільны або састарэў. Пачніце нанова з новым ключом.",
        "mfa_start_again": "Пачаць нанова", "mfa_codes_title": "Вашы рэзервовыя коды",
        "mfa_codes_why": "Запішыце іх і захоўвайце асобна ад тэлефона. Кожны дзейнічае адзін раз замест кода з "
        "праграмы, калі тэлефон згублены або адабраны. Яны паказваюцца толькі цяпер.",
        "mfa_sign_in_now": "Увайсці з кодам з праграмы",
        "cases": "Справы", "new_case": "Новая справа", "search_name": "Пошук па імені", "search": "Знайсці",
        "next_page": "Наступная старонка",
        "reference": "Нумар", "status": "Статус", "country": "Краіна", "opened": "Адкрыта", "no_cases": "Справаў няма.",
        "full_name": "Поўнае імя", "other_names": "Іншыя імёны (па адным у радку)", "date_of_birth": "Дата нараджэння",
        "city": "Горад", "languages": "Мовы (праз коску, напр. be, ru)", "phone": "Тэлефон",
        "telegram": "Telegram", "signal": "Signal", "email": "Эл. пошта", "safety_notes": "Нататкі пра бяспеку",
        "save": "Захаваць", "created": "Справа створана", "possible_duplicates": "Магчымыя дублікаты: у гэтага "
        "чалавека ўжо можа быць справа", "open_case": "Адкрыць справу",
        "duplicates_before_save": "Пакуль нічога не захавана. У гэтых справаў тая ж дата нараджэння, а імя "
        "запісана іншым пісьмом або інакш. Адкрыйце іх, каб праверыць (кожная адкрыецца ў новай укладцы); калі "
        "гэта іншы чалавек або патрэбна асобная справа, захавайце ўсё роўна.", "save_anyway": "Захаваць усё роўна",
        "needs": "Патрэбы", "category": "Катэгорыя", "urgency": "Тэрміновасць", "notes": "Нататкі",
        "add_need": "Дадаць патрэбу", "consent": "Згода",
        "no_consent": "Згода не запісана: нічога перадаваць нельга.",
        "share_contact": "Можна перадаваць кантакты", "share_health": "Можна перадаваць звесткі пра здароўе",
        "method": "Як дадзена згода", "verbal": "вусна", "written": "пісьмова", "expires_on": "Дзейнічае да",
        "record_consent": "Запісаць згоду", "referrals": "Накіраванні", "new_referral": "Новае накіраванне",
        "timeline": "Гісторыя", "close_case": "Закрыць справу", "erase_case": "Сцерці справу",
        "erase_title": "Сцерці гэтую справу?", "erase_explained": "Сціранне незваротнае. Імя чалавека, кантакты, "
        "нататкі і звесткі пра здароўе знішчаюцца назаўсёды (іх ключ выдаляецца) у гэтым і ва ўсіх іншых сэрвісах; "
        "застаюцца толькі нумар і статус «сцёрта». Адмяніць гэта нельга.",
        "erase_confirm": "Так, сцерці назаўсёды", "cancel": "Адмена", "partner": "Партнёр",
        "find_partners": "Знайсці партнёраў", "display_name": "Імя для партнёра", "language": "Мова",
        "note": "Нататка для партнёра", "contact": "Кантакт для партнёра", "how_to_reach": "Як звязацца з чалавекам",
        "health_summary": "Звесткі пра здароўе",
        "not_allowed": "Згода гэтага не дазваляе", "send_referral": "Адправіць накіраванне", "yes": "так", "no": "не",
        "grants": "Гранты", "donor": "Донар", "code": "Код", "budget": "Бюджэт", "committed": "Зарэзервавана",
        "paid": "Выплачана", "available": "Даступна", "report_csv": "Справаздача па грантах (CSV)",
        "disbursements": "Выплаты", "queue": "Чарга выплат", "amount": "Сума", "requested_at": "Запытана",
        "approve": "Ухваліць", "reject": "Адхіліць", "pay": "Выплаціць", "pay_method": "Спосаб",
        "pay_reference": "Нумар плацяжу", "own_request": "Ваш уласны запыт: ухваляе іншы супрацоўнік",
        "nothing_here": "Тут пуста.", "skip": "Да зместу", "language_choice": "Мова", "problem": "Праблема",
        "partners_none": "Адпаведных партнёраў няма.", "consent_beside": "Дзейная згода", "until": "да",
        "always": "без тэрміну",
    },
}

# The admin pages' words (gateway/console/admin.py), kept in one block of their own and merged into MESSAGES.
_ADMIN_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "admin_users": "Staff accounts", "admin_approvals": "Approvals", "admin_new_user": "New account",
        "admin_roles": "Roles", "admin_second_factor": "Second factor", "admin_factor_set": "set up",
        "admin_factor_none": "not set up", "admin_you": "you", "admin_active": "active", "admin_disabled": "disabled",
        "admin_locked": "locked out after failed sign-ins", "admin_waiting": "waiting for another admin's approval",
        "admin_change_waits": "A change waits for another admin's approval",
        "admin_more_users": "There are more accounts than this page shows.",
        "admin_file_custody_title": "The keys lie in files on this server",
        "admin_file_custody_text": "The keys that open every record are kept in plain files beside the databases "
            "(key custody `file`, for development): a copy of this server's disk opens "
            "everything. Do not keep real cases here until the keys are sealed under a "
            "passphrase or kept in OpenBao.",
        "admin_alone_title": "You are the only admin",
        "admin_alone_text": "Every change you make here takes effect at once, with nobody to approve it: no one checks "
        "the accounts you create or the roles you grant. Add a second admin: from then on each such change waits until "
        "another admin approves it.",
        "admin_alone_add": "Add a second admin",
        "admin_checked": "Admins: {n}. A new account, a granted role, an account enabled again and a reset second "
        "factor take effect only when another admin approves them.",
        "admin_waiting_for_you": "Requests of other admins waiting for your decision: {n}",
        "admin_username_help": "3–64 characters: Latin letters, digits and . _ @ -",
        "admin_first_password": "First password",
        "admin_first_password_help": "At least 12 characters, and not on a list of leaked passwords. Give it to the "
        "person in a safe way; at the first sign-in they set up a second factor.",
        "admin_alone_role": "The admin role is never combined with another role: an admin manages accounts and sees "
        "no case.",
        "admin_partner_id": "Partner id (partner's staff only)",
        "admin_partner_id_help": "The partner's id from the partner directory; leave it empty for everyone else.",
        "admin_create": "Create the account", "admin_created_at": "Created", "admin_asked_by": "Requested by",
        "admin_own_account": "This is your own account. Its roles and second factor are changed by another admin, "
        "not by you.",
        "admin_change_roles": "Change roles", "admin_access": "Access", "admin_enable": "Enable the account",
        "admin_disable": "Disable the account",
        "admin_disable_help": "At once: every session ends, and no sign-in works until the account is enabled again.",
        "admin_sign_out_everywhere": "Sign out everywhere",
        "admin_sign_out_everywhere_help": "For a lost phone or a laptop left signed in: every session of this person "
        "ends at once; the password still works.",
        "admin_reset_mfa": "Reset the second factor",
        "admin_reset_mfa_help": "When the phone is lost: the person sets up a new second factor at the next sign-in; "
        "their sessions end.",
        "admin_approvals_explained": "What one admin asks for takes effect only when another admin approves it. "
        "Nobody approves their own request.",
        "admin_request": "Request", "admin_decision": "Decision",
        "admin_own_request": "Your request: waiting for another admin's approval",
        "admin_no_requests": "No request is waiting.",
        "admin_asked_create": "New account", "admin_asked_roles": "New roles for", "admin_asked_enable": "Enable again",
        "admin_asked_reset_mfa": "Reset the second factor of", "admin_asked_client": "New partner API client",
        "admin_done_created": "The account is created and works now.",
        "admin_done_created_pending": "The account is created and is waiting for another admin's approval: it cannot "
        "sign in until then.",
        "admin_done_roles": "The roles are changed.",
        "admin_done_roles_pending": "The new roles are waiting for another admin's approval; until then the old ones "
        "hold.",
        "admin_done_disabled": "The account is disabled and its sessions have ended.",
        "admin_done_enabled": "The account is enabled again.",
        "admin_done_enabled_pending": "Enabling the account is waiting for another admin's approval.",
        "admin_done_mfa_reset": "The second factor is reset: the person sets up a new one at the next sign-in.",
        "admin_done_mfa_reset_pending": "The reset of the second factor is waiting for another admin's approval.",
        "admin_done_signed_out": "Every session of this account has ended.",
        "admin_done_approved": "Approved: the change takes effect now.",
        "admin_done_rejected": "Rejected: the change will not take effect.",
        "admin_refused_admin_alone": "The admin role is never combined with another role. Create a separate account "
        "for the other role.",
        "admin_refused_partner_staff_alone": "A partner's staff member holds no other role.",
        "admin_refused_partner_id_needed": "A partner's staff member needs the partner id of their organisation.",
        "admin_refused_partner_id_only": "Only a partner's staff member is bound to a partner: leave the partner id "
        "empty.",
        "admin_refused_password_short": "The password must be at least 12 characters long.",
        "admin_refused_password_long": "The password must be at most 256 characters long.",
        "admin_refused_password_username": "The password must not be the user name.",
        "admin_refused_password_breached": "This password is on a list of passwords leaked in breaches, which "
        "attackers try first; choose another.",
        "admin_refused_username_taken": "An account with this user name already exists.",
        "admin_refused_own_account": "No one changes their own account's roles or second factor: another admin must.",
        "admin_refused_last_admin": "This is the last active admin; add or enable another admin first.",
        "admin_refused_own_request": "Nobody approves their own request: another admin must.",
        "admin_refused_decided": "This request has already been decided.",
        "admin_refused_no_user": "There is no such account.", "admin_refused_no_request": "There is no such request.",
        "admin_invalid_username": "The user name takes 3–64 characters: Latin letters, digits and . _ @ -, starting "
        "with a letter or a digit.",
        "admin_invalid_roles": "Choose one or more of the roles listed.", "admin_invalid_password": "Type a password.",
        "admin_invalid_partner_id": "The partner id is the partner's identifier from the directory (a UUID).",
        "admin_invalid_form": "The form is not filled in correctly.",
        "role_admin": "Admin", "role_caseworker": "Caseworker", "role_supervisor": "Supervisor",
        "role_finance": "Finance", "role_auditor": "Auditor", "role_coordinator": "Programme coordinator",
        "role_partner_staff": "Partner's staff member",
    },
    "ru": {
        "admin_users": "Учётные записи", "admin_approvals": "Одобрения", "admin_new_user": "Новая учётная запись",
        "admin_roles": "Роли", "admin_second_factor": "Второй фактор", "admin_factor_set": "настроен",
        "admin_factor_none": "не настроен", "admin_you": "вы", "admin_active": "действует",
        "admin_disabled": "отключена", "admin_locked": "заблокирована после неудачных входов",
        "admin_waiting": "ждёт одобрения другого администратора",
        "admin_change_waits": "Изменение ждёт одобрения другого администратора",
        "admin_more_users": "Учётных записей больше, чем показано на этой странице.",
        "admin_file_custody_title": "Ключи лежат в файлах на этом сервере",
        "admin_file_custody_text": "Ключи, открывающие все записи, хранятся в обычных файлах рядом с базами данных "
            "(хранение ключей `file`, для разработки): копия диска этого сервера открывает "
            "всё. Не храните здесь настоящие дела, пока ключи не запечатаны паролем или не "
            "хранятся в OpenBao.",
        "admin_alone_title": "Вы — единственный администратор",
        "admin_alone_text": "Каждое ваше изменение здесь вступает в силу сразу, и одобрить его некому: никто не "
        "проверяет созданные вами учётные записи и выданные роли. Добавьте второго администратора: тогда каждое такое "
        "изменение будет ждать одобрения другого администратора.",
        "admin_alone_add": "Добавить второго администратора",
        "admin_checked": "Администраторов: {n}. Новая учётная запись, выданная роль, повторное включение учётной "
        "записи и сброс второго фактора вступают в силу только после одобрения другим администратором.",
        "admin_waiting_for_you": "Запросы других администраторов ждут вашего решения: {n}",
        "admin_username_help": "3–64 знака: латинские буквы, цифры и . _ @ -",
        "admin_first_password": "Первый пароль",
        "admin_first_password_help": "Не короче 12 знаков и не из списков утёкших паролей. Передайте его человеку "
        "надёжным способом; при первом входе он настроит второй фактор.",
        "admin_alone_role": "Роль администратора никогда не совмещается с другой ролью: администратор управляет "
        "учётными записями и не видит дел.",
        "admin_partner_id": "Идентификатор партнёра (только для сотрудника партнёра)",
        "admin_partner_id_help": "Идентификатор из справочника партнёров; для всех остальных оставьте пустым.",
        "admin_create": "Создать учётную запись", "admin_created_at": "Создана", "admin_asked_by": "Автор запроса",
        "admin_own_account": "Это ваша собственная учётная запись. Её роли и второй фактор меняет другой "
        "администратор, а не вы.",
        "admin_change_roles": "Изменить роли", "admin_access": "Доступ", "admin_enable": "Включить учётную запись",
        "admin_disable": "Отключить учётную запись",
        "admin_disable_help": "Сразу: все сеансы завершаются, и войти нельзя, пока учётную запись снова не включат.",
        "admin_sign_out_everywhere": "Завершить все сеансы",
        "admin_sign_out_everywhere_help": "Если потерян телефон или на ноутбуке остался открытый вход: все сеансы "
        "этого человека сразу завершаются; пароль продолжает действовать.",
        "admin_reset_mfa": "Сбросить второй фактор",
        "admin_reset_mfa_help": "Если телефон потерян: при следующем входе человек настроит новый второй фактор; его "
        "сеансы завершаются.",
        "admin_approvals_explained": "То, о чём просит один администратор, вступает в силу только после одобрения "
        "другим. Никто не одобряет собственный запрос.",
        "admin_request": "Запрос", "admin_decision": "Решение",
        "admin_own_request": "Ваш запрос: ждёт одобрения другого администратора",
        "admin_no_requests": "Ожидающих запросов нет.",
        "admin_asked_create": "Новая учётная запись", "admin_asked_roles": "Новые роли для",
        "admin_asked_enable": "Снова включить", "admin_asked_reset_mfa": "Сбросить второй фактор для",
        "admin_asked_client": "Новый API-клиент партнёра",
        "admin_done_created": "Учётная запись создана и уже действует.",
        "admin_done_created_pending": "Учётная запись создана и ждёт одобрения другого администратора: до тех пор "
        "войти с ней нельзя.",
        "admin_done_roles": "Роли изменены.",
        "admin_done_roles_pending": "Новые роли ждут одобрения другого администратора; до тех пор действуют прежние.",
        "admin_done_disabled": "Учётная запись отключена, её сеансы завершены.",
        "admin_done_enabled": "Учётная запись снова включена.",
        "admin_done_enabled_pending": "Включение учётной записи ждёт одобрения другого администратора.",
        "admin_done_mfa_reset": "Второй фактор сброшен: при следующем входе человек настроит новый.",
        "admin_done_mfa_reset_pending": "Сброс второго фактора ждёт одобрения другого администратора.",
        "admin_done_signed_out": "Все сеансы этой учётной записи завершены.",
        "admin_done_approved": "Одобрено: изменение вступило в силу.",
        "admin_done_rejected": "Отклонено: изменение не вступит в силу.",
        "admin_refused_admin_alone": "Роль администратора никогда не совмещается с другой ролью. Создайте для другой "
        "роли отдельную учётную запись.",
        "admin_refused_partner_staff_alone": "У сотрудника партнёра не может быть других ролей.",
        "admin_refused_partner_id_needed": "Сотруднику партнёра нужен идентификатор его организации.",
        "admin_refused_partner_id_only": "К партнёру привязывается только сотрудник партнёра: оставьте "
        "идентификатор партнёра пустым.",
        "admin_refused_password_short": "Пароль должен быть не короче 12 знаков.",
        "admin_refused_password_long": "Пароль должен быть не длиннее 256 знаков.",
        "admin_refused_password_username": "Пароль не должен совпадать с именем пользователя.",
        "admin_refused_password_breached": "Этот пароль есть в списках утёкших паролей, которые злоумышленники "
        "пробуют первыми; выберите другой.",
        "admin_refused_username_taken": "Учётная запись с таким именем пользователя уже есть.",
        "admin_refused_own_account": "Никто не меняет роли или второй фактор своей учётной записи: это делает другой "
        "администратор.",
        "admin_refused_last_admin": "Это последний действующий администратор; сначала добавьте или включите другого.",
        "admin_refused_own_request": "Свой запрос одобрить нельзя: это делает другой администратор.",
        "admin_refused_decided": "По этому запросу уже принято решение.",
        "admin_refused_no_user": "Такой учётной записи нет.", "admin_refused_no_request": "Такого запроса нет.",
        "admin_invalid_username": "Имя пользователя — 3–64 знака: латинские буквы, цифры и . _ @ -, в начале буква "
        "или цифра.",
        "admin_invalid_roles": "Выберите одну или несколько ролей из списка.",
        "admin_invalid_password": "Введите пароль.",
        "admin_invalid_partner_id": "Идентификатор партнёра — это его идентификатор из справочника (UUID).",
        "admin_invalid_form": "Форма заполнена неверно.",
        "role_admin": "Администратор", "role_caseworker": "Куратор дел", "role_supervisor": "Руководитель кураторов",
        "role_finance": "Финансы", "role_auditor": "Аудитор", "role_coordinator": "Координатор программы",
        "role_partner_staff": "Сотрудник партнёра",
    },
    "be": {
        "admin_users": "Уліковыя запісы", "admin_approvals": "Ухваленні", "admin_new_user": "Новы ўліковы запіс",
        "admin_roles": "Ролі", "admin_second_factor": "Другі фактар", "admin_factor_set": "наладжаны",
        "admin_factor_none": "не наладжаны", "admin_you": "вы", "admin_active": "дзейнічае",
        "admin_disabled": "адключаны", "admin_locked": "заблакаваны пасля няўдалых уваходаў",
        "admin_waiting": "чакае ўхвалення іншага адміністратара",
        "admin_change_waits": "Змяненне чакае ўхвалення іншага адміністратара",
        "admin_more_users": "Уліковых запісаў больш, чым паказана на гэтай старонцы.",
        "admin_file_custody_title": "Ключы ляжаць у файлах на гэтым серверы",
        "admin_file_custody_text": "Ключы, якія адкрываюць усе запісы, захоўваюцца ў звычайных файлах побач з базамі"
            " даных (захоўванне ключоў `file`, для распрацоўкі): копія дыска гэтага сервера "
            "адкрывае ўсё. Не захоўвайце тут сапраўдныя справы, пакуль ключы не запячатаныя "
            "паролем або не захоўваюцца ў OpenBao.",
        "admin_alone_title": "Вы — адзіны адміністратар",
        "admin_alone_text": "Кожнае ваша змяненне тут уступае ў сілу адразу, і ўхваліць яго няма каму: ніхто не "
        "правярае створаныя вамі ўліковыя запісы і выдадзеныя ролі. Дадайце другога адміністратара: тады кожнае такое "
        "змяненне будзе чакаць ухвалення іншага адміністратара.",
        "admin_alone_add": "Дадаць другога адміністратара",
        "admin_checked": "Адміністратараў: {n}. Новы ўліковы запіс, выдадзеная роля, паўторнае ўключэнне ўліковага "
        "запісу і скід другога фактару ўступаюць у сілу толькі пасля ўхвалення іншым адміністратарам.",
        "admin_waiting_for_you": "Запыты іншых адміністратараў чакаюць вашага рашэння: {n}",
        "admin_username_help": "3–64 знакі: лацінскія літары, лічбы і . _ @ -",
        "admin_first_password": "Першы пароль",
        "admin_first_password_help": "Не карацейшы за 12 знакаў і не са спісаў паролей, якія ўцяклі. Перадайце яго "
        "чалавеку надзейным спосабам; пры першым уваходзе ён наладзіць другі фактар.",
        "admin_alone_role": "Роля адміністратара ніколі не спалучаецца з іншай роляй: адміністратар кіруе ўліковымі "
        "запісамі і не бачыць спраў.",
        "admin_partner_id": "Ідэнтыфікатар партнёра (толькі для супрацоўніка партнёра)",
        "admin_partner_id_help": "Ідэнтыфікатар з даведніка партнёраў; для ўсіх астатніх пакіньце пустым.",
        "admin_create": "Стварыць уліковы запіс", "admin_created_at": "Створаны", "admin_asked_by": "Аўтар запыту",
        "admin_own_account": "Гэта ваш уласны ўліковы запіс. Яго ролі і другі фактар змяняе іншы адміністратар, а "
        "не вы.",
        "admin_change_roles": "Змяніць ролі", "admin_access": "Доступ", "admin_enable": "Уключыць уліковы запіс",
        "admin_disable": "Адключыць уліковы запіс",
        "admin_disable_help": "Адразу: усе сеансы завяршаюцца, і ўвайсці нельга, пакуль уліковы запіс зноў не "
        "ўключаць.",
        "admin_sign_out_everywhere": "Завяршыць усе сеансы",
        "admin_sign_out_everywhere_help": "Калі страчаны тэлефон або на ноўтбуку застаўся адкрыты ўваход: усе сеансы "
        "гэтага чалавека адразу завяршаюцца; пароль працягвае дзейнічаць.",
        "admin_reset_mfa": "Скінуць другі фактар",
        "admin_reset_mfa_help": "Калі тэлефон страчаны: пры наступным уваходзе чалавек наладзіць новы другі фактар; "
        "яго сеансы завяршаюцца.",
        "admin_approvals_explained": "Тое, пра што просіць адзін адміністратар, уступае ў сілу толькі пасля "
        "ўхвалення іншым. Ніхто не ўхваляе ўласны запыт.",
        "admin_request": "Запыт", "admin_decision": "Рашэнне",
        "admin_own_request": "Ваш запыт: чакае ўхвалення іншага адміністратара",
        "admin_no_requests": "Няма запытаў, якія чакаюць.",
        "admin_asked_create": "Новы ўліковы запіс", "admin_asked_roles": "Новыя ролі для",
        "admin_asked_enable": "Зноў уключыць", "admin_asked_reset_mfa": "Скінуць другі фактар для",
        "admin_asked_client": "Новы API-кліент партнёра",
        "admin_done_created": "Уліковы запіс створаны і ўжо дзейнічае.",
        "admin_done_created_pending": "Уліковы запіс створаны і чакае ўхвалення іншага адміністратара: да таго часу "
        "ўвайсці з ім нельга.",
        "admin_done_roles": "Ролі зменены.",
        "admin_done_roles_pending": "Новыя ролі чакаюць ухвалення іншага адміністратара; да таго часу дзейнічаюць "
        "ранейшыя.",
        "admin_done_disabled": "Уліковы запіс адключаны, яго сеансы завершаны.",
        "admin_done_enabled": "Уліковы запіс зноў уключаны.",
        "admin_done_enabled_pending": "Уключэнне ўліковага запісу чакае ўхвалення іншага адміністратара.",
        "admin_done_mfa_reset": "Другі фактар скінуты: пры наступным уваходзе чалавек наладзіць новы.",
        "admin_done_mfa_reset_pending": "Скід другога фактару чакае ўхвалення іншага адміністратара.",
        "admin_done_signed_out": "Усе сеансы гэтага ўліковага запісу завершаны.",
        "admin_done_approved": "Ухвалена: змяненне ўступіла ў сілу.",
        "admin_done_rejected": "Адхілена: змяненне не ўступіць у сілу.",
        "admin_refused_admin_alone": "Роля адміністратара ніколі не спалучаецца з іншай роляй. Стварыце для іншай "
        "ролі асобны ўліковы запіс.",
        "admin_refused_partner_staff_alone": "У супрацоўніка партнёра не можа быць іншых роляў.",
        "admin_refused_partner_id_needed": "Супрацоўніку партнёра патрэбны ідэнтыфікатар яго арганізацыі.",
        "admin_refused_partner_id_only": "Да партнёра прывязваецца толькі супрацоўнік партнёра: пакіньце "
        "ідэнтыфікатар партнёра пустым.",
        "admin_refused_password_short": "Пароль павінен быць не карацейшы за 12 знакаў.",
        "admin_refused_password_long": "Пароль павінен быць не даўжэйшы за 256 знакаў.",
        "admin_refused_password_username": "Пароль не павінен супадаць з імем карыстальніка.",
        "admin_refused_password_breached": "Гэты пароль ёсць у спісах паролей, якія ўцяклі; зламыснікі спрабуюць іх "
        "першымі. Выберыце іншы.",
        "admin_refused_username_taken": "Уліковы запіс з такім імем карыстальніка ўжо ёсць.",
        "admin_refused_own_account": "Ніхто не змяняе ролі або другі фактар свайго ўліковага запісу: гэта робіць "
        "іншы адміністратар.",
        "admin_refused_last_admin": "Гэта апошні дзейны адміністратар; спачатку дадайце або ўключыце іншага.",
        "admin_refused_own_request": "Свой запыт ухваліць нельга: гэта робіць іншы адміністратар.",
        "admin_refused_decided": "Па гэтым запыце ўжо прынята рашэнне.",
        "admin_refused_no_user": "Такога ўліковага запісу няма.", "admin_refused_no_request": "Такога запыту няма.",
        "admin_invalid_username": "Імя карыстальніка — 3–64 знакі: лацінскія літары, лічбы і . _ @ -, у пачатку "
        "літара або лічба.",
        "admin_invalid_roles": "Выберыце адну або некалькі роляў са спісу.",
        "admin_invalid_password": "Увядзіце пароль.",
        "admin_invalid_partner_id": "Ідэнтыфікатар партнёра — гэта яго ідэнтыфікатар з даведніка (UUID).",
        "admin_invalid_form": "Форма запоўнена няправільна.",
        "role_admin": "Адміністратар", "role_caseworker": "Куратар спраў", "role_supervisor": "Кіраўнік куратараў",
        "role_finance": "Фінансы", "role_auditor": "Аўдытар", "role_coordinator": "Каардынатар праграмы",
        "role_partner_staff": "Супрацоўнік партнёра",
    },
}
for _language, _words in _ADMIN_MESSAGES.items():
    MESSAGES[_language].update(_words)

# Sealing the keys (SPEC §8, gateway/console/admin.py): the admin's button, its confirmation, and the banner every
# console page shows an admin while the keys are sealed.
_SEAL_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "seal_button": "Seal all keys now",
        "seal_title": "Seal all keys now?",
        "seal_explained": "For a raid or when someone is forced to open the system. Within two seconds every part of "
        "the system forgets every key: nobody can open a case, a referral or a payment, and nobody can sign in, "
        "until an operator unseals the keys on the server (`rehab unseal`). Nothing is deleted. There is no button to "
        "undo this: a stolen admin session must not be able to open the system again.",
        "seal_confirm": "Yes, seal all keys now",
        "seal_done": "The keys are sealed. These parts of the system confirmed:",
        "seal_process": "Part", "seal_instance": "Where", "seal_state": "Keys",
        "seal_state_sealed": "sealed", "seal_state_unsealed": "NOT sealed",
        "seal_not_sent": "The command did not reach the other parts of the system (NATS out of reach): only this "
        "gateway is sealed. Run `rehab seal` on the server now.",
        "sealed_banner_title": "The keys are sealed",
        "sealed_banner_text": "Nothing that needs a key works: cases, referrals and payments cannot be opened, and "
        "nobody can sign in. An operator unseals the keys on the server with `rehab unseal`.",
    },
    "ru": {
        "seal_button": "Запечатать все ключи сейчас",
        "seal_title": "Запечатать все ключи сейчас?",
        "seal_explained": "На случай обыска или когда кого-то принуждают открыть систему. В течение двух секунд "
        "каждая часть системы забывает все ключи: никто не сможет открыть дело, направление или выплату и никто не "
        "сможет войти, пока оператор не распечатает ключи на сервере (`rehab unseal`). Ничего не удаляется. Кнопки "
        "отмены нет: украденная сессия администратора не должна открывать систему снова.",
        "seal_confirm": "Да, запечатать все ключи сейчас",
        "seal_done": "Ключи запечатаны. Подтвердили эти части системы:",
        "seal_process": "Часть", "seal_instance": "Где", "seal_state": "Ключи",
        "seal_state_sealed": "запечатаны", "seal_state_unsealed": "НЕ запечатаны",
        "seal_not_sent": "Команда не дошла до других частей системы (NATS недоступен): запечатан только этот шлюз. "
        "Немедленно выполните `rehab seal` на сервере.",
        "sealed_banner_title": "Ключи запечатаны",
        "sealed_banner_text": "Ничто, для чего нужен ключ, не работает: дела, направления и выплаты не открываются, "
        "и никто не может войти. Оператор распечатывает ключи на сервере командой `rehab unseal`.",
    },
    "be": {
        "seal_button": "Запячатаць усе ключы зараз",
        "seal_title": "Запячатаць усе ключы зараз?",
        "seal_explained": "На выпадак ператрусу або калі кагосьці прымушаюць адкрыць сістэму. На працягу дзвюх "
        "секунд кожная частка сістэмы забывае ўсе ключы: ніхто не зможа адкрыць справу, накіраванне або выплату і "
        "ніхто не зможа ўвайсці, пакуль аператар не распячатае ключы на серверы (`rehab unseal`). Нічога не "
        "выдаляецца. Кнопкі адмены няма: скрадзеная сесія адміністратара не павінна адкрываць сістэму зноў.",
        "seal_confirm": "Так, запячатаць усе ключы зараз",
        "seal_done": "Ключы запячатаныя. Пацвердзілі гэтыя часткі сістэмы:",
        "seal_process": "Частка", "seal_instance": "Дзе", "seal_state": "Ключы",
        "seal_state_sealed": "запячатаныя", "seal_state_unsealed": "НЕ запячатаныя",
        "seal_not_sent": "Каманда не дайшла да іншых частак сістэмы (NATS недаступны): запячатаны толькі гэты шлюз. "
        "Неадкладна выканайце `rehab seal` на серверы.",
        "sealed_banner_title": "Ключы запячатаныя",
        "sealed_banner_text": "Нічога, для чаго патрэбны ключ, не працуе: справы, накіраванні і выплаты не "
        "адкрываюцца, і ніхто не можа ўвайсці. Аператар распячатвае ключы на серверы камандай `rehab unseal`.",
    },
}
for _language, _words in _SEAL_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The words of "My cases", the supervisor's caseload and break-glass (need-to-know, SPEC §4), in a block of their own
# merged into MESSAGES. `{…}` fields are filled by the page (str.format).
_CASELOAD_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "my_cases": "My cases", "search_results": "Found by name",
        "my_cases_explained": "The cases assigned to you. A search finds every case; one not assigned to you shows "
        "only its reference, its status and who holds it.",
        "assignees": "Caseworkers", "nobody": "nobody", "not_yours": "Not assigned to you",
        "open_with_reason": "Open, stating why",
        "caseload": "Caseload", "caseload_explained": "Every case and the caseworkers who hold it. No names or other "
        "personal data here: only the caseworkers a case is assigned to read those.",
        "all_statuses": "All", "status_open": "Open", "status_closed": "Closed", "status_erased": "Erased",
        "reassign": "Give to", "assign_to": "Assign to", "assign": "Assign",
        "assign_help": "Write the user names of caseworkers, separated by commas, in the order you want them. They "
        "replace whoever holds the case now.",
        "assign_none": "Name at least one caseworker.",
        "assign_refused": "Not assigned: these user names are not enabled caseworkers (or are not known yet): "
        "{names}.",
        "break_glass_title": "This case is not assigned to you",
        "break_glass_explained": "A case's personal data is seen only by those who need to know it: the caseworkers "
        "it is assigned to. You may still open it — say, when the person is in front of you and their caseworker "
        "cannot be reached — but only by stating why.",
        "break_glass_recorded": "The opening is recorded: who, when and your reason go into the audit trail and onto "
        "the case's timeline, and the caseworkers assigned to it will see them.",
        "break_glass_reason": "Why do you need to open this case?",
        "break_glass_reason_help": "{low} to {high} characters, in your own words.",
        "break_glass_minutes": "Once you state it, the case stays open to you for {minutes} minutes; then you are "
        "asked again.",
        "break_glass_open": "Record my reason and open the case",
        "break_glass_length": "State the reason in {low} to {high} characters.",
        "break_glass_lapsed": "The reason you stated earlier covered {minutes} minutes and has lapsed.",
        "break_glass_not_saved": "What you just sent was not saved: the reason you stated earlier has lapsed. State "
        "it again, then do it once more.",
        "break_glass_active": "This case is not assigned to you: you opened it by stating why. Your reason is in the "
        "audit trail and on the timeline below, which its caseworkers see; it covers what you do on this case for "
        "{minutes} more min.",
        "supervisor_no_case": "A supervisor sees the caseload, not the people in it: a case's personal data is for "
        "the caseworkers assigned to it.",
        "to_caseload": "To the caseload", "back_to_my_cases": "Back to my cases",
        "timeline_break_glass": "Opened without assignment by", "timeline_assigned": "Assigned to",
        "reason": "Reason",
    },
    "ru": {
        "my_cases": "Мои дела", "search_results": "Найдено по имени",
        "my_cases_explained": "Дела, назначенные вам. Поиск находит все дела; у чужого дела видны только номер, "
        "статус и кто его ведёт.",
        "assignees": "Кураторы", "nobody": "нет", "not_yours": "Не назначено вам",
        "open_with_reason": "Открыть, указав причину",
        "caseload": "Все дела", "caseload_explained": "Все дела и кураторы, которые их ведут. Имён и других личных "
        "данных здесь нет: их читают только кураторы, назначенные на дело.",
        "all_statuses": "Все", "status_open": "Открытые", "status_closed": "Закрытые", "status_erased": "Стёртые",
        "reassign": "Передать", "assign_to": "Кому назначить", "assign": "Назначить",
        "assign_help": "Впишите имена пользователей кураторов через запятую, в нужном порядке. Они заменят тех, "
        "кто ведёт дело сейчас.",
        "assign_none": "Укажите хотя бы одного куратора.",
        "assign_refused": "Не назначено: эти имена пользователей не принадлежат действующим кураторам (или ещё не "
        "известны): {names}.",
        "break_glass_title": "Это дело вам не назначено",
        "break_glass_explained": "Личные данные дела видят только те, кому их нужно знать: кураторы, назначенные на "
        "это дело. Открыть его всё же можно — например, если человек перед вами, а его куратор недоступен, — но "
        "только указав причину.",
        "break_glass_recorded": "Открытие записывается: кто, когда и ваша причина попадают в журнал аудита и в "
        "историю дела, и назначенные на него кураторы это увидят.",
        "break_glass_reason": "Зачем вам нужно открыть это дело?",
        "break_glass_reason_help": "От {low} до {high} знаков, своими словами.",
        "break_glass_minutes": "После этого дело будет открыто для вас {minutes} мин.; затем причину спросят снова.",
        "break_glass_open": "Записать причину и открыть дело",
        "break_glass_length": "Укажите причину: от {low} до {high} знаков.",
        "break_glass_lapsed": "Указанная ранее причина действовала {minutes} мин. и истекла.",
        "break_glass_not_saved": "То, что вы сейчас отправили, не сохранено: указанная ранее причина истекла. "
        "Укажите её снова и повторите действие.",
        "break_glass_active": "Это дело вам не назначено: вы открыли его, указав причину. Она записана в журнал "
        "аудита и в историю ниже, которую видят кураторы дела, и действует для ваших действий с ним ещё "
        "{minutes} мин.",
        "supervisor_no_case": "Руководитель видит распределение дел, но не людей в них: личные данные дела — только "
        "для назначенных на него кураторов.",
        "to_caseload": "Ко всем делам", "back_to_my_cases": "К моим делам",
        "timeline_break_glass": "Открытие без назначения:", "timeline_assigned": "Назначены кураторы",
        "reason": "Причина",
    },
    "be": {
        "my_cases": "Мае справы", "search_results": "Знойдзена па імені",
        "my_cases_explained": "Справы, прызначаныя вам. Пошук знаходзіць усе справы; у чужой справы бачныя толькі "
        "нумар, статус і хто яе вядзе.",
        "assignees": "Куратары", "nobody": "няма", "not_yours": "Не прызначана вам",
        "open_with_reason": "Адкрыць, указаўшы прычыну",
        "caseload": "Усе справы", "caseload_explained": "Усе справы і куратары, якія іх вядуць. Імёнаў і іншых "
        "асабістых звестак тут няма: іх чытаюць толькі куратары, прызначаныя на справу.",
        "all_statuses": "Усе", "status_open": "Адкрытыя", "status_closed": "Закрытыя", "status_erased": "Сцёртыя",
        "reassign": "Перадаць", "assign_to": "Каму прызначыць", "assign": "Прызначыць",
        "assign_help": "Упішыце імёны карыстальнікаў куратараў праз коску, у патрэбным парадку. Яны заменяць тых, "
        "хто вядзе справу цяпер.",
        "assign_none": "Укажыце хаця б аднаго куратара.",
        "assign_refused": "Не прызначана: гэтыя імёны карыстальнікаў не належаць дзейным куратарам (або яшчэ не "
        "вядомыя): {names}.",
        "break_glass_title": "Гэтая справа вам не прызначана",
        "break_glass_explained": "Асабістыя звесткі справы бачаць толькі тыя, каму іх трэба ведаць: куратары, "
        "прызначаныя на гэтую справу. Адкрыць яе ўсё ж можна — напрыклад, калі чалавек перад вамі, а яго куратар "
        "недаступны, — але толькі ўказаўшы прычыну.",
        "break_glass_recorded": "Адкрыццё запісваецца: хто, калі і ваша прычына трапляюць у журнал аўдыту і ў "
        "гісторыю справы, і прызначаныя на яе куратары гэта ўбачаць.",
        "break_glass_reason": "Навошта вам трэба адкрыць гэтую справу?",
        "break_glass_reason_help": "Ад {low} да {high} знакаў, сваімі словамі.",
        "break_glass_minutes": "Пасля гэтага справа будзе адкрытая для вас {minutes} хв.; потым прычыну спытаюць "
        "зноў.",
        "break_glass_open": "Запісаць прычыну і адкрыць справу",
        "break_glass_length": "Укажыце прычыну: ад {low} да {high} знакаў.",
        "break_glass_lapsed": "Указаная раней прычына дзейнічала {minutes} хв. і скончылася.",
        "break_glass_not_saved": "Тое, што вы зараз адправілі, не захавана: указаная раней прычына скончылася. "
        "Укажыце яе зноў і паўтарыце дзеянне.",
        "break_glass_active": "Гэтая справа вам не прызначана: вы адкрылі яе, указаўшы прычыну. Яна запісана ў "
        "журнал аўдыту і ў гісторыю ніжэй, якую бачаць куратары справы, і дзейнічае для вашых дзеянняў з ёй яшчэ "
        "{minutes} хв.",
        "supervisor_no_case": "Кіраўнік бачыць размеркаванне спраў, але не людзей у іх: асабістыя звесткі справы — "
        "толькі для прызначаных на яе куратараў.",
        "to_caseload": "Да ўсіх спраў", "back_to_my_cases": "Да маіх спраў",
        "timeline_break_glass": "Адкрыццё без прызначэння:", "timeline_assigned": "Прызначаны куратары",
        "reason": "Прычына",
    },
}
for _language, _words in _CASELOAD_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The case page's documents (SPEC §4): the list, the upload form and its progress.
_DOCUMENT_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "documents": "Documents", "no_documents": "No documents yet.", "document_kind": "Kind",
        "document_name": "Name", "document_size": "Size", "document_added": "Added", "document_download": "Download",
        "document_file": "File", "document_upload": "Upload",
        "document_help": "PDF, JPEG, PNG or plain text, up to 20 MB. Location, camera and author details are "
        "removed from photos and PDFs before they are stored.",
        "document_uploading": "Uploading… {percent}%", "document_failed": "The upload did not go through.",
        "kind_identity": "Identity", "kind_medical": "Medical", "kind_legal": "Legal", "kind_release": "Release",
        "kind_other": "Other",
    },
    "ru": {
        "documents": "Документы", "no_documents": "Документов пока нет.", "document_kind": "Вид",
        "document_name": "Название", "document_size": "Размер", "document_added": "Добавлен",
        "document_download": "Скачать", "document_file": "Файл", "document_upload": "Загрузить",
        "document_help": "PDF, JPEG, PNG или простой текст, до 20 МБ. Сведения о месте съёмки, камере и авторе "
        "удаляются из фотографий и PDF до сохранения.",
        "document_uploading": "Загрузка… {percent}%", "document_failed": "Загрузить не удалось.",
        "kind_identity": "Удостоверение личности", "kind_medical": "Медицинский", "kind_legal": "Юридический",
        "kind_release": "Об освобождении", "kind_other": "Другое",
    },
    "be": {
        "documents": "Дакументы", "no_documents": "Дакументаў пакуль няма.", "document_kind": "Від",
        "document_name": "Назва", "document_size": "Памер", "document_added": "Дададзены",
        "document_download": "Спампаваць", "document_file": "Файл", "document_upload": "Загрузіць",
        "document_help": "PDF, JPEG, PNG або просты тэкст, да 20 МБ. Звесткі пра месца здымкі, камеру і аўтара "
        "выдаляюцца з фотаздымкаў і PDF да захавання.",
        "document_uploading": "Загрузка… {percent}%", "document_failed": "Загрузіць не атрымалася.",
        "kind_identity": "Пасведчанне асобы", "kind_medical": "Медыцынскі", "kind_legal": "Юрыдычны",
        "kind_release": "Пра вызваленне", "kind_other": "Іншае",
    },
}
for _language, _words in _DOCUMENT_MESSAGES.items():
    MESSAGES[_language].update(_words)


# Notes and tasks on a case (case_notes.html, case_tasks.html, home_tasks.html), and how the timeline names their
# steps (`timeline.<kind>`), in a block of their own merged into MESSAGES.
_CASEWORK_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "case_notes": "Notes", "no_notes": "No notes yet.", "new_note": "New note", "add_note": "Add note",
        "case_tasks": "Tasks", "no_tasks": "No tasks.", "task_title": "Task", "task_due": "Due",
        "task_assignee": "For", "add_task": "Add task", "mark_done": "Done", "task_done": "done",
        "task_open": "open", "task_overdue": "overdue", "task_today": "today",
        "due_today_overdue": "Due today and overdue",
        "timeline.note.added": "Note added", "timeline.task.added": "Task added", "timeline.task.done": "Task done",
    },
    "ru": {
        "case_notes": "Заметки", "no_notes": "Заметок пока нет.", "new_note": "Новая заметка",
        "add_note": "Добавить заметку", "case_tasks": "Задачи", "no_tasks": "Задач нет.", "task_title": "Задача",
        "task_due": "Срок", "task_assignee": "Для кого", "add_task": "Добавить задачу", "mark_done": "Выполнено",
        "task_done": "выполнена", "task_open": "открыта", "task_overdue": "просрочена", "task_today": "сегодня",
        "due_today_overdue": "На сегодня и просроченные",
        "timeline.note.added": "Добавлена заметка", "timeline.task.added": "Добавлена задача",
        "timeline.task.done": "Задача выполнена",
    },
    "be": {
        "case_notes": "Нататкі", "no_notes": "Нататак пакуль няма.", "new_note": "Новая нататка",
        "add_note": "Дадаць нататку", "case_tasks": "Задачы", "no_tasks": "Задач няма.", "task_title": "Задача",
        "task_due": "Тэрмін", "task_assignee": "Для каго", "add_task": "Дадаць задачу", "mark_done": "Зроблена",
        "task_done": "зроблена", "task_open": "адкрытая", "task_overdue": "пратэрмінавана", "task_today": "сёння",
        "due_today_overdue": "На сёння і пратэрмінаваныя",
        "timeline.note.added": "Дададзена нататка", "timeline.task.added": "Дададзена задача",
        "timeline.task.done": "Задача зроблена",
    },
}
for _language, _words in _CASEWORK_MESSAGES.items():
    MESSAGES[_language].update(_words)


# Needs moved through their statuses, a closed case reopened, a case marked a duplicate of the one kept (issue #17).
_NEEDS_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "need_open": "open", "need_in_progress": "in progress", "need_met": "met", "need_dropped": "dropped",
        "need_to_in_progress": "Start", "need_to_met": "Met", "need_to_dropped": "Drop",
        "reopen_case": "Reopen the case", "status_duplicate": "Duplicates",
        "duplicate_of": "Duplicate of", "mark_duplicate": "Mark as duplicate of…",
        "mark_duplicate_help": "The reference of the case that is kept (e.g. BY-2026-00042): one of this case's "
        "possible duplicates or one of your cases. This case then leaves the caseload and takes no more changes.",
        "mark_duplicate_button": "Mark as duplicate",
        "no_case_with_reference": "No case with this reference among this case's possible duplicates or your cases.",
    },
    "ru": {
        "need_open": "открыта", "need_in_progress": "в работе", "need_met": "выполнена", "need_dropped": "снята",
        "need_to_in_progress": "В работу", "need_to_met": "Выполнена", "need_to_dropped": "Снять",
        "reopen_case": "Открыть дело снова", "status_duplicate": "Дубликаты",
        "duplicate_of": "Дубликат дела", "mark_duplicate": "Отметить как дубликат…",
        "mark_duplicate_help": "Номер дела, которое остаётся (например, BY-2026-00042): одного из возможных "
        "дубликатов этого дела или одного из ваших дел. Это дело уйдёт из списка дел и больше не будет меняться.",
        "mark_duplicate_button": "Отметить как дубликат",
        "no_case_with_reference": "Среди возможных дубликатов этого дела и ваших дел нет дела с таким номером.",
    },
    "be": {
        "need_open": "адкрытая", "need_in_progress": "у рабоце", "need_met": "выкананая", "need_dropped": "знятая",
        "need_to_in_progress": "У работу", "need_to_met": "Выканана", "need_to_dropped": "Зняць",
        "reopen_case": "Адкрыць справу зноў", "status_duplicate": "Дублікаты",
        "duplicate_of": "Дублікат справы", "mark_duplicate": "Пазначыць як дублікат…",
        "mark_duplicate_help": "Нумар справы, якая застаецца (напрыклад, BY-2026-00042): аднаго з магчымых "
        "дублікатаў гэтай справы або адной з вашых спраў. Гэтая справа сыдзе са спіса спраў і больш не будзе "
        "мяняцца.",
        "mark_duplicate_button": "Пазначыць як дублікат",
        "no_case_with_reference": "Сярод магчымых дублікатаў гэтай справы і вашых спраў няма справы з такім нумарам.",
    },
}
for _language, _words in _NEEDS_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The whole case on one page (issue #17 item 7): every field recorded at intake, editing with its conflict page and
# its field errors, consent history, referrals with outcome and cost, aid requested and paid, and a word for every
# data value and every step of the timeline (`timeline.<kind>`, `source_<service>`). An article's number is written
# with a non-breaking hyphen (361‑1): a label that wraps never splits it.
_CASE_PAGE_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "field_contact": "Contacts",
        "document_choose": "Choose a file to upload.",
        "problem_case_closed": "This case is closed: it can be read but no longer changed. Reopen it first.",
        "problem_case_erased": "This case was erased.",
        "problem_case_duplicate": "This case was marked a duplicate: make changes in the case that is kept.",
        "problem_case_unknown": "Aid can be requested once the aid service has learned of this case, in a moment: "
        "try again shortly.",
        "problem_grant_unknown": "There is no such grant; choose one from the list.",
        "about_person": "The person", "safety_title": "Safety: read this before you contact the person",
        "field_full_name": "Full name", "field_other_names": "Other names", "field_date_of_birth": "Date of birth",
        "field_country": "Country", "field_city": "City", "field_languages": "Languages", "field_phone": "Phone",
        "field_telegram": "Telegram", "field_signal": "Signal", "field_email": "E-mail",
        "field_release_date": "Released on", "field_facility": "Facility", "field_articles": "Articles",
        "field_safety_notes": "Safety notes",
        "release_date": "Release date", "facility": "Facility where the person was held",
        "articles": "Articles of the criminal code (comma-separated, e.g. 342, 361‑1)",
        "edit_case": "Edit the details", "edit_title": "Edit the details", "save_changes": "Save changes",
        "conflict_title": "Someone changed this case while you were editing it",
        "conflict_explained": "Nothing was saved yet, and nothing you typed is lost: your changes are in the form "
        "below. The table shows each field someone else changed since you opened the form: what is stored now and "
        "what you typed. Check them; if you still want your changes, save again.",
        "conflict_field": "Field", "conflict_stored": "Stored now", "conflict_yours": "You typed",
        "conflict_untouched": "You did not change this field: the form now shows what is stored.",
        "conflict_case_only": "The case itself changed meanwhile (it was closed and reopened, say), but none of "
        "these fields. Your changes are in the form: save again to store them.",
        "fields_wrong": "Some fields need correcting; nothing was saved.",
        "error_required": "Fill this in.", "error_too_long": "This is too long.",
        "error_phone": "A phone number: digits, spaces and + ( ) - . only.",
        "error_email": "An e-mail address, like name@example.org.", "error_country": "Two letters, like LT or PL.",
        "error_birth_date": "A date in the past, after 1900.", "error_release_date": "A date after 1900.",
        "error_date": "This is not a date.", "error_invalid": "This value is not accepted.",
        "error_amount": "An amount greater than zero, like 300.00.",
        "case_status_open": "open", "case_status_closed": "closed", "case_status_duplicate": "duplicate",
        "case_status_erased": "erased",
        "category_medical": "Medical", "category_psychological": "Psychological", "category_relocation": "Relocation",
        "category_legal": "Legal", "category_housing": "Housing", "category_employment": "Employment",
        "category_financial": "Financial",
        "urgency_low": "low", "urgency_medium": "medium", "urgency_high": "high", "urgency_critical": "critical",
        "referral_sent": "sent", "referral_accepted": "accepted", "referral_declined": "declined",
        "referral_in_progress": "in progress", "referral_completed": "completed", "referral_cancelled": "cancelled",
        "referral_outcome": "Outcome", "referral_cost": "Cost estimate", "referral_sent_on": "Sent",
        "no_referrals": "No referrals yet.", "declined_because": "Declined:",
        "aid": "Aid", "no_aid": "No aid requested yet.", "aid_purpose": "Purpose", "aid_grant": "Grant",
        "aid_request": "Request aid", "aid_send": "Send the request",
        "aid_payee": "Who receives the money (if not the person)", "aid_payee_name": "Recipient's name",
        "aid_payee_account": "Account or card", "aid_no_grants": "No grant takes requests today; ask finance.",
        "aid_paid_total": "Paid", "aid_waiting_total": "Awaiting approval or payment",
        "aid_help": "Finance approves and pays the request. The amount is in the grant's currency.",
        "aid_requested": "requested", "aid_approved": "approved", "aid_rejected": "rejected", "aid_paid": "paid",
        "aid_voided": "voided", "who": "Who",
        "consent_history": "Consent history, newest first", "consent_recorded": "Recorded",
        "consent_for": "Partner categories", "consent_withdrawn": "withdrawn: nothing may be shared",
        "consent_in_force": "in force",
        "size_kb": "{n} KB", "size_mb": "{n} MB",
        "timeline.case.opened": "Case opened", "timeline.case.updated": "Details changed",
        "timeline.case.closed": "Case closed", "timeline.case.reopened": "Case reopened",
        "timeline.case.duplicate": "Marked as a duplicate of",
        "timeline.case.duplicate_kept": "Another case was marked a duplicate of this one:",
        "timeline.needs.assessed": "Need added", "timeline.needs.status_changed": "Need moved",
        "timeline.consent.changed": "Consent recorded", "timeline.document.added": "Document added",
        "timeline.referral.sent": "Referral sent", "timeline.referral.accepted": "Referral accepted",
        "timeline.referral.declined": "Referral declined", "timeline.referral.started": "Partner started work",
        "timeline.referral.completed": "Referral completed", "timeline.referral.cancelled": "Referral cancelled",
        "timeline.disbursement.requested": "Aid requested", "timeline.disbursement.approved": "Aid approved",
        "timeline.disbursement.rejected": "Aid rejected", "timeline.disbursement.paid": "Aid paid",
        "timeline.disbursement.voided": "Aid voided", "timeline_other": "Another step",
        "source_intake": "case file", "source_referrals": "referrals", "source_funds": "aid",
    },
    "ru": {
        "field_contact": "Контакты",
        "document_choose": "Выберите файл для загрузки.",
        "problem_case_closed": "Дело закрыто: его можно читать, но не менять. Сначала откройте его снова.",
        "problem_case_erased": "Это дело стёрто.",
        "problem_case_duplicate": "Это дело отмечено как дубликат: вносите изменения в дело, которое осталось.",
        "problem_case_unknown": "Помощь можно будет запросить, как только сервис выплат узнает об этом деле: "
        "попробуйте через минуту.",
        "problem_grant_unknown": "Такого гранта нет; выберите грант из списка.",
        "about_person": "О человеке", "safety_title": "Безопасность: прочтите, прежде чем связываться с человеком",
        "field_full_name": "Полное имя", "field_other_names": "Другие имена", "field_date_of_birth": "Дата рождения",
        "field_country": "Страна", "field_city": "Город", "field_languages": "Языки", "field_phone": "Телефон",
        "field_telegram": "Telegram", "field_signal": "Signal", "field_email": "Эл. почта",
        "field_release_date": "Дата освобождения", "field_facility": "Учреждение", "field_articles": "Статьи",
        "field_safety_notes": "Заметки о безопасности",
        "release_date": "Дата освобождения", "facility": "Учреждение, где человек содержался",
        "articles": "Статьи уголовного кодекса (через запятую, напр. 342, 361‑1)",
        "edit_case": "Изменить данные", "edit_title": "Изменение данных", "save_changes": "Сохранить изменения",
        "conflict_title": "Пока вы редактировали, дело изменил кто-то другой",
        "conflict_explained": "Пока ничего не сохранено, и ничего из набранного вами не потеряно: ваши изменения — "
        "в форме ниже. В таблице — каждое поле, которое кто-то другой изменил после того, как вы открыли форму: что "
        "сохранено сейчас и что набрали вы. Проверьте их; если ваши изменения всё ещё нужны, сохраните снова.",
        "conflict_field": "Поле", "conflict_stored": "Сохранено сейчас", "conflict_yours": "Вы набрали",
        "conflict_untouched": "Вы не меняли это поле: в форме теперь сохранённое значение.",
        "conflict_case_only": "Тем временем изменилось само дело (например, его закрыли и снова открыли), но не эти "
        "поля. Ваши изменения — в форме: сохраните снова, чтобы их записать.",
        "fields_wrong": "Некоторые поля нужно исправить; ничего не сохранено.",
        "error_required": "Заполните это поле.", "error_too_long": "Слишком длинно.",
        "error_phone": "Номер телефона: только цифры, пробелы и + ( ) - .",
        "error_email": "Адрес эл. почты, например name@example.org.",
        "error_country": "Две латинские буквы, например LT или PL.",
        "error_birth_date": "Дата в прошлом, после 1900 года.", "error_release_date": "Дата после 1900 года.",
        "error_date": "Это не дата.", "error_invalid": "Такое значение не принимается.",
        "error_amount": "Сумма больше нуля, например 300,00.",
        "case_status_open": "открыто", "case_status_closed": "закрыто", "case_status_duplicate": "дубликат",
        "case_status_erased": "стёрто",
        "category_medical": "Медицина", "category_psychological": "Психологическая помощь",
        "category_relocation": "Переезд", "category_legal": "Юридическая помощь", "category_housing": "Жильё",
        "category_employment": "Работа", "category_financial": "Финансы",
        "urgency_low": "низкая", "urgency_medium": "средняя", "urgency_high": "высокая",
        "urgency_critical": "критическая",
        "referral_sent": "отправлено", "referral_accepted": "принято", "referral_declined": "отклонено",
        "referral_in_progress": "в работе", "referral_completed": "завершено", "referral_cancelled": "отменено",
        "referral_outcome": "Результат", "referral_cost": "Оценка стоимости", "referral_sent_on": "Отправлено",
        "no_referrals": "Направлений пока нет.", "declined_because": "Причина отказа:",
        "aid": "Помощь", "no_aid": "Помощь пока не запрашивалась.", "aid_purpose": "Назначение", "aid_grant": "Грант",
        "aid_request": "Запросить помощь", "aid_send": "Отправить запрос",
        "aid_payee": "Кто получает деньги (если не сам человек)", "aid_payee_name": "Имя получателя",
        "aid_payee_account": "Счёт или карта",
        "aid_no_grants": "Сегодня ни один грант не принимает запросы; обратитесь в финансовый отдел.",
        "aid_paid_total": "Выплачено", "aid_waiting_total": "Ждёт одобрения или выплаты",
        "aid_help": "Запрос одобряет и оплачивает финансовый отдел. Сумма — в валюте гранта.",
        "aid_requested": "запрошена", "aid_approved": "одобрена", "aid_rejected": "отклонена",
        "aid_paid": "выплачена", "aid_voided": "аннулирована", "who": "Кто",
        "consent_history": "История согласий, сначала новые", "consent_recorded": "Записано",
        "consent_for": "Категории партнёров", "consent_withdrawn": "отозвано: ничего передавать нельзя",
        "consent_in_force": "действует",
        "size_kb": "{n} КБ", "size_mb": "{n} МБ",
        "timeline.case.opened": "Дело открыто", "timeline.case.updated": "Изменены данные",
        "timeline.case.closed": "Дело закрыто", "timeline.case.reopened": "Дело открыто снова",
        "timeline.case.duplicate": "Отмечено как дубликат дела",
        "timeline.case.duplicate_kept": "Другое дело отмечено как дубликат этого:",
        "timeline.needs.assessed": "Добавлена потребность", "timeline.needs.status_changed": "Потребность изменена",
        "timeline.consent.changed": "Записано согласие", "timeline.document.added": "Добавлен документ",
        "timeline.referral.sent": "Направление отправлено", "timeline.referral.accepted": "Направление принято",
        "timeline.referral.declined": "Направление отклонено", "timeline.referral.started": "Партнёр начал работу",
        "timeline.referral.completed": "Направление завершено",
        "timeline.referral.cancelled": "Направление отменено",
        "timeline.disbursement.requested": "Запрошена помощь", "timeline.disbursement.approved": "Помощь одобрена",
        "timeline.disbursement.rejected": "Помощь отклонена", "timeline.disbursement.paid": "Помощь выплачена",
        "timeline.disbursement.voided": "Помощь аннулирована", "timeline_other": "Другой шаг",
        "source_intake": "дело", "source_referrals": "направления", "source_funds": "помощь",
    },
    "be": {
        "field_contact": "Кантакты",
        "document_choose": "Выберыце файл для загрузкі.",
        "problem_case_closed": "Справа закрытая: яе можна чытаць, але не мяняць. Спачатку адкрыйце яе зноў.",
        "problem_case_erased": "Гэтая справа сцёртая.",
        "problem_case_duplicate": "Гэтая справа пазначана як дублікат: уносьце змяненні ў справу, якая засталася.",
        "problem_case_unknown": "Дапамогу можна будзе запытаць, як толькі сэрвіс выплат даведаецца пра гэтую "
        "справу: паспрабуйце праз хвіліну.",
        "problem_grant_unknown": "Такога гранта няма; выберыце грант са спіса.",
        "about_person": "Пра чалавека", "safety_title": "Бяспека: прачытайце, перш чым звязвацца з чалавекам",
        "field_full_name": "Поўнае імя", "field_other_names": "Іншыя імёны", "field_date_of_birth": "Дата нараджэння",
        "field_country": "Краіна", "field_city": "Горад", "field_languages": "Мовы", "field_phone": "Тэлефон",
        "field_telegram": "Telegram", "field_signal": "Signal", "field_email": "Эл. пошта",
        "field_release_date": "Дата вызвалення", "field_facility": "Установа", "field_articles": "Артыкулы",
        "field_safety_notes": "Нататкі пра бяспеку",
        "release_date": "Дата вызвалення", "facility": "Установа, дзе чалавек утрымліваўся",
        "articles": "Артыкулы крымінальнага кодэкса (праз коску, напр. 342, 361‑1)",
        "edit_case": "Змяніць звесткі", "edit_title": "Змяненне звестак", "save_changes": "Захаваць змяненні",
        "conflict_title": "Пакуль вы рэдагавалі, справу змяніў нехта іншы",
        "conflict_explained": "Пакуль нічога не захавана, і нічога з набранага вамі не страчана: вашы змяненні — у "
        "форме ніжэй. У табліцы — кожнае поле, якое нехта іншы змяніў пасля таго, як вы адкрылі форму: што захавана "
        "цяпер і што набралі вы. Праверце іх; калі вашы змяненні ўсё яшчэ патрэбныя, захавайце зноў.",
        "conflict_field": "Поле", "conflict_stored": "Захавана цяпер", "conflict_yours": "Вы набралі",
        "conflict_untouched": "Вы не мянялі гэтае поле: у форме цяпер захаванае значэнне.",
        "conflict_case_only": "Тым часам змянілася сама справа (напрыклад, яе закрылі і зноў адкрылі), але не гэтыя "
        "палі. Вашы змяненні — у форме: захавайце зноў, каб іх запісаць.",
        "fields_wrong": "Некаторыя палі трэба выправіць; нічога не захавана.",
        "error_required": "Запоўніце гэтае поле.", "error_too_long": "Занадта доўга.",
        "error_phone": "Нумар тэлефона: толькі лічбы, прабелы і + ( ) - .",
        "error_email": "Адрас эл. пошты, напрыклад name@example.org.",
        "error_country": "Дзве лацінскія літары, напрыклад LT або PL.",
        "error_birth_date": "Дата ў мінулым, пасля 1900 года.", "error_release_date": "Дата пасля 1900 года.",
        "error_date": "Гэта не дата.", "error_invalid": "Такое значэнне не прымаецца.",
        "error_amount": "Сума больш за нуль, напрыклад 300,00.",
        "case_status_open": "адкрытая", "case_status_closed": "закрытая", "case_status_duplicate": "дублікат",
        "case_status_erased": "сцёртая",
        "category_medical": "Медыцына", "category_psychological": "Псіхалагічная дапамога",
        "category_relocation": "Пераезд", "category_legal": "Юрыдычная дапамога", "category_housing": "Жыллё",
        "category_employment": "Праца", "category_financial": "Фінансы",
        "urgency_low": "нізкая", "urgency_medium": "сярэдняя", "urgency_high": "высокая",
        "urgency_critical": "крытычная",
        "referral_sent": "адпраўлена", "referral_accepted": "прынята", "referral_declined": "адхілена",
        "referral_in_progress": "у рабоце", "referral_completed": "завершана", "referral_cancelled": "скасавана",
        "referral_outcome": "Вынік", "referral_cost": "Ацэнка кошту", "referral_sent_on": "Адпраўлена",
        "no_referrals": "Накіраванняў пакуль няма.", "declined_because": "Прычына адмовы:",
        "aid": "Дапамога", "no_aid": "Дапамога пакуль не запытвалася.", "aid_purpose": "Прызначэнне",
        "aid_grant": "Грант", "aid_request": "Запытаць дапамогу", "aid_send": "Адправіць запыт",
        "aid_payee": "Хто атрымлівае грошы (калі не сам чалавек)", "aid_payee_name": "Імя атрымальніка",
        "aid_payee_account": "Рахунак або картка",
        "aid_no_grants": "Сёння ніводны грант не прымае запыты; звярніцеся ў фінансавы аддзел.",
        "aid_paid_total": "Выплачана", "aid_waiting_total": "Чакае ўхвалення або выплаты",
        "aid_help": "Запыт ухваляе і аплочвае фінансавы аддзел. Сума — у валюце гранта.",
        "aid_requested": "запытана", "aid_approved": "ухвалена", "aid_rejected": "адхілена", "aid_paid": "выплачана",
        "aid_voided": "анулявана", "who": "Хто",
        "consent_history": "Гісторыя згод, спачатку новыя", "consent_recorded": "Запісана",
        "consent_for": "Катэгорыі партнёраў", "consent_withdrawn": "адклікана: нічога перадаваць нельга",
        "consent_in_force": "дзейнічае",
        "size_kb": "{n} КБ", "size_mb": "{n} МБ",
        "timeline.case.opened": "Справа адкрыта", "timeline.case.updated": "Змененыя звесткі",
        "timeline.case.closed": "Справа закрыта", "timeline.case.reopened": "Справа адкрыта зноў",
        "timeline.case.duplicate": "Пазначана як дублікат справы",
        "timeline.case.duplicate_kept": "Іншая справа пазначана як дублікат гэтай:",
        "timeline.needs.assessed": "Дададзена патрэба", "timeline.needs.status_changed": "Патрэба зменена",
        "timeline.consent.changed": "Запісана згода", "timeline.document.added": "Дададзены дакумент",
        "timeline.referral.sent": "Накіраванне адпраўлена", "timeline.referral.accepted": "Накіраванне прынята",
        "timeline.referral.declined": "Накіраванне адхілена", "timeline.referral.started": "Партнёр пачаў працу",
        "timeline.referral.completed": "Накіраванне завершана",
        "timeline.referral.cancelled": "Накіраванне скасавана",
        "timeline.disbursement.requested": "Запытана дапамога", "timeline.disbursement.approved": "Дапамога ўхвалена",
        "timeline.disbursement.rejected": "Дапамога адхілена", "timeline.disbursement.paid": "Дапамога выплачана",
        "timeline.disbursement.voided": "Дапамога анулявана", "timeline_other": "Іншы крок",
        "source_intake": "справа", "source_referrals": "накіраванні", "source_funds": "дапамога",
    },
}
for _language, _words in _CASE_PAGE_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The finance pages (gateway/console/finance.py, issue #19): grants and their budget bars, the disbursement queue with
# the payee masked until asked for, the funds service's refusals as sentences, the donor report. `{…}` fields are
# filled by the page (str.format).
_FINANCE_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "fin_grants_intro": "Each grant's budget and where it stands: paid, committed to approved requests, and "
        "still available.",
        "fin_bar_label": "Of the budget: paid {paid}, committed {committed}, available {available}",
        "fin_period": "Period", "fin_pays_for": "Pays for", "fin_grant_running": "running",
        "fin_grant_ended": "ended", "fin_grant_not_started": "not started yet",
        "fin_grants_none": "No grants yet: create the first one below.",
        "fin_more_grants": "More grants exist than this page shows.",
        "fin_new_grant": "New grant",
        "fin_grant_help": "The whole budget is available at once. The code names the grant in requests and reports.",
        "fin_code_hint": "Latin letters, digits and . _ / - (up to 40), e.g. EU-2026/03.",
        "fin_currency": "Currency",
        "fin_budget_hint": "In the grant's currency, e.g. 10000.00 (JPY has no decimals: 1500000).",
        "fin_starts_on": "Starts on", "fin_ends_on": "Ends on", "fin_categories": "What it pays for",
        "fin_create_grant": "Create the grant",
        "fin_done_created": "The grant was created; its whole budget is available.",
        "fin_error_code": "Latin letters, digits and . _ / - only, starting with a letter or digit, at most 40.",
        "fin_error_code_taken": "A grant with this code exists already; choose another code.",
        "fin_error_currency": "Choose a currency from the list.",
        "fin_error_amount": "An amount greater than zero, like {example}.",
        "fin_error_amount_whole": "A whole amount greater than zero, without decimals, like {example}.",
        "fin_error_ends_on": "The grant cannot end before it starts.",
        "fin_error_categories": "Choose at least one.",
        "fin_error_donor": "One line of text, at most 200 characters.",
        "fin_grant_title": "Grant {code}", "fin_all_grants": "All grants",
        "fin_grant_disbursements": "Disbursements from this grant",
        "fin_no_disbursements": "No disbursements from this grant yet.",
        "fin_donor_report": "Donor report", "fin_donor_csv": "Donor report (CSV)",
        "fin_queue_help": "Approving commits the amount from the grant; a payment is recorded once. Reject declines "
        "a request; void cancels one made in error — either gives an approved amount back to the grant. A paid "
        "disbursement can no longer be changed.",
        "fin_view_todo": "To do", "fin_view_requested": "Waiting for approval", "fin_view_approved": "Approved, to pay",
        "fin_view_paid": "Paid", "fin_view_rejected": "Rejected", "fin_view_voided": "Voided",
        "fin_case": "Case", "fin_requested_by": "Requested by", "fin_approved": "Approved", "fin_rejected": "Rejected",
        "fin_voided": "Voided", "fin_paid": "Paid",
        "fin_payee": "Payee", "fin_payee_none": "none given: the person themselves",
        "fin_payee_kind_iban": "IBAN", "fin_payee_kind_card": "Card", "fin_payee_kind_phone": "Phone",
        "fin_payee_kind_account": "Account", "fin_ending_in": "ending in", "fin_name_hidden": "name hidden",
        "fin_show_payee": "Show payee",
        "fin_payee_shown": "Shown now; this reading is recorded in the audit trail.",
        "fin_erased": "erased with the case",
        "fin_four_eyes": "You requested this yourself. By the four-eyes rule another member of the finance staff "
        "approves it.",
        "fin_void": "Void",
        "fin_method_bank_transfer": "Bank transfer", "fin_method_card": "Card", "fin_method_cash": "Cash",
        "fin_method_mobile_money": "Mobile money", "fin_method_crypto": "Cryptocurrency", "fin_method_other": "Other",
        "fin_reference_hint": "The bank's or cash book's reference: Latin letters, digits and . _ / # : - — never a "
        "name.",
        "fin_error_reference": "Latin letters, digits and . _ / # : - only, starting with a letter or digit, at "
        "most 64.",
        "fin_done_approved": "Approved: the amount is committed from the grant.",
        "fin_done_rejected": "Rejected; nothing will be paid.", "fin_done_voided": "Voided; nothing will be paid.",
        "fin_done_paid": "Paid and recorded.", "fin_more_waiting": "There are more than this page shows:",
        "fin_refused_four_eyes": "You requested this disbursement yourself: by the four-eyes rule another member of "
        "the finance staff must approve it. Nothing was changed.",
        "fin_refused_already_paid": "This disbursement is already paid; it cannot be changed or paid again.",
        "fin_refused_changed": "Someone else has already decided on this disbursement; it is shown below as it is "
        "now. Nothing was changed.",
        "fin_refused_funds_short": "Grant {code} has {available} available, less than the {amount} asked for. "
        "Nothing was approved.",
        "fin_refused_grant_period": "Grant {code} runs from {start} to {end}; today is outside that period. Nothing "
        "was approved.",
        "fin_refused_grant_category": "Grant {code} does not pay for this category ({category}). Nothing was "
        "approved.",
        "fin_refused_currency": "The grant pays in another currency than this disbursement's. Nothing was approved.",
        "fin_refused_case_closed": "The case of this disbursement is closed: no aid can be approved for it.",
        "fin_refused_case_erased": "The case of this disbursement was erased: no aid can be approved for it.",
        "fin_refused_case_duplicate": "The case of this disbursement was marked a duplicate: the aid is requested "
        "in the case that is kept.",
        "fin_refused_case_unknown": "The aid service has not yet heard of this disbursement's case; try again in a "
        "moment.",
        "fin_refused_not_found": "There is no such disbursement.",
        "fin_refused_in_flight": "This is being recorded already (the form was sent twice); the page shows it in a "
        "moment.",
        "fin_refused_key_reused": "This form was already sent with other values. Nothing more was done: check the "
        "disbursement below and, if need be, send the fresh form.",
        "fin_refused_forbidden": "Your role does not allow this.",
        "fin_refused_unavailable": "The aid service is not available right now; try again shortly. Nothing was "
        "changed.",
        "fin_refused_other": "The system refused this (error {status}). Nothing was changed.",
        "fin_donor_report_title": "Donor report: {code}",
        "fin_donor_report_help": "What the donor may see: the grant's amounts, and what was paid month by month and "
        "category by category, in people and payments — no case and no name.",
        "fin_suppression": "No count below {n} is shown: a cell with fewer people is hidden, and so are as many of "
        "the smallest others as it takes for the hidden ones not to be worked out from the totals.",
        "fin_people_helped": "People helped", "fin_people_hidden": "fewer than {n}: not shown",
        "fin_month": "Month", "fin_people": "People", "fin_payments": "Payments", "fin_cell_hidden": "hidden",
        "fin_no_payments": "Nothing has been paid from this grant yet.", "fin_generated": "Generated",
        "fin_month_1": "January", "fin_month_2": "February", "fin_month_3": "March", "fin_month_4": "April",
        "fin_month_5": "May", "fin_month_6": "June", "fin_month_7": "July", "fin_month_8": "August",
        "fin_month_9": "September", "fin_month_10": "October", "fin_month_11": "November",
        "fin_month_12": "December",
    },
    "ru": {
        "fin_grants_intro": "Бюджет каждого гранта и его состояние: выплачено, зарезервировано под одобренные "
        "запросы и ещё доступно.",
        "fin_bar_label": "Из бюджета выплачено {paid}, зарезервировано {committed}, доступно {available}",
        "fin_period": "Срок", "fin_pays_for": "Оплачивает", "fin_grant_running": "действует",
        "fin_grant_ended": "завершён", "fin_grant_not_started": "ещё не начался",
        "fin_grants_none": "Грантов пока нет: создайте первый ниже.",
        "fin_more_grants": "Грантов больше, чем показано на этой странице.",
        "fin_new_grant": "Новый грант",
        "fin_grant_help": "Весь бюджет сразу становится доступным. Код обозначает грант в запросах и отчётах.",
        "fin_code_hint": "Латинские буквы, цифры и . _ / - (до 40 знаков), напр. EU-2026/03.",
        "fin_currency": "Валюта",
        "fin_budget_hint": "В валюте гранта, напр. 10 000,00 (у иены нет дробной части: 1 500 000).",
        "fin_starts_on": "Начало", "fin_ends_on": "Окончание", "fin_categories": "На что идут средства",
        "fin_create_grant": "Создать грант",
        "fin_done_created": "Грант создан; весь его бюджет доступен.",
        "fin_error_code": "Только латинские буквы, цифры и . _ / -, в начале буква или цифра, не больше 40 знаков.",
        "fin_error_code_taken": "Грант с таким кодом уже есть; выберите другой код.",
        "fin_error_currency": "Выберите валюту из списка.",
        "fin_error_amount": "Сумма больше нуля, например {example}.",
        "fin_error_amount_whole": "Целая сумма больше нуля, без дробной части, например {example}.",
        "fin_error_ends_on": "Грант не может закончиться раньше, чем начнётся.",
        "fin_error_categories": "Выберите хотя бы одну.",
        "fin_error_donor": "Одна строка текста, не больше 200 знаков.",
        "fin_grant_title": "Грант {code}", "fin_all_grants": "Все гранты",
        "fin_grant_disbursements": "Выплаты из этого гранта",
        "fin_no_disbursements": "Выплат из этого гранта пока нет.",
        "fin_donor_report": "Отчёт для донора", "fin_donor_csv": "Отчёт для донора (CSV)",
        "fin_queue_help": "Одобрение резервирует сумму из гранта; выплата записывается один раз. «Отклонить» — "
        "отказать в запросе; «Аннулировать» — отменить запрос, сделанный по ошибке; и то и другое возвращает "
        "одобренную сумму в грант. Выплаченное изменить уже нельзя.",
        "fin_view_todo": "Ждут действий", "fin_view_requested": "Ждут одобрения",
        "fin_view_approved": "Одобрены, к выплате", "fin_view_paid": "Выплачены", "fin_view_rejected": "Отклонены",
        "fin_view_voided": "Аннулированы",
        "fin_case": "Дело", "fin_requested_by": "Кто запросил", "fin_approved": "Одобрено",
        "fin_rejected": "Отклонено", "fin_voided": "Аннулировано", "fin_paid": "Выплачено",
        "fin_payee": "Получатель", "fin_payee_none": "не указан: сам человек",
        "fin_payee_kind_iban": "IBAN", "fin_payee_kind_card": "Карта", "fin_payee_kind_phone": "Телефон",
        "fin_payee_kind_account": "Счёт", "fin_ending_in": "оканчивается на", "fin_name_hidden": "имя скрыто",
        "fin_show_payee": "Показать получателя",
        "fin_payee_shown": "Показано сейчас; этот просмотр записан в журнал аудита.",
        "fin_erased": "стёрто вместе с делом",
        "fin_four_eyes": "Этот запрос сделали вы. По правилу четырёх глаз его одобряет другой сотрудник "
        "финансового отдела.",
        "fin_void": "Аннулировать",
        "fin_method_bank_transfer": "Банковский перевод", "fin_method_card": "Карта", "fin_method_cash": "Наличные",
        "fin_method_mobile_money": "Мобильный платёж", "fin_method_crypto": "Криптовалюта",
        "fin_method_other": "Другое",
        "fin_reference_hint": "Номер из банка или кассовой книги: латинские буквы, цифры и . _ / # : - — без имён.",
        "fin_error_reference": "Только латинские буквы, цифры и . _ / # : -, в начале буква или цифра, не больше "
        "64 знаков.",
        "fin_done_approved": "Одобрено: сумма зарезервирована из гранта.",
        "fin_done_rejected": "Отклонено; ничего не будет выплачено.",
        "fin_done_voided": "Аннулировано; ничего не будет выплачено.",
        "fin_done_paid": "Выплата записана.", "fin_more_waiting": "Здесь показано не всё:",
        "fin_refused_four_eyes": "Эту выплату запросили вы сами: по правилу четырёх глаз её должен одобрить другой "
        "сотрудник финансового отдела. Ничего не изменено.",
        "fin_refused_already_paid": "Эта выплата уже произведена; её нельзя ни изменить, ни выплатить повторно.",
        "fin_refused_changed": "Кто-то другой уже принял решение по этой выплате; ниже она показана такой, какая "
        "она сейчас. Ничего не изменено.",
        "fin_refused_funds_short": "В гранте {code} доступно {available} — меньше запрошенных {amount}. Ничего не "
        "одобрено.",
        "fin_refused_grant_period": "Грант {code} действует с {start} по {end}; сегодняшний день вне этого срока. "
        "Ничего не одобрено.",
        "fin_refused_grant_category": "Грант {code} не оплачивает эту категорию ({category}). Ничего не одобрено.",
        "fin_refused_currency": "Грант платит в другой валюте, чем указана в этой выплате. Ничего не одобрено.",
        "fin_refused_case_closed": "Дело этой выплаты закрыто: помощь по нему одобрить нельзя.",
        "fin_refused_case_erased": "Дело этой выплаты стёрто: помощь по нему одобрить нельзя.",
        "fin_refused_case_duplicate": "Дело этой выплаты отмечено как дубликат: помощь запрашивают в деле, которое "
        "осталось.",
        "fin_refused_case_unknown": "Сервис выплат ещё не знает о деле этой выплаты; попробуйте через минуту.",
        "fin_refused_not_found": "Такой выплаты нет.",
        "fin_refused_in_flight": "Это уже записывается (форма отправлена дважды); через мгновение страница это "
        "покажет.",
        "fin_refused_key_reused": "Эта форма уже была отправлена с другими значениями. Больше ничего не сделано: "
        "проверьте выплату ниже и при необходимости отправьте новую форму.",
        "fin_refused_forbidden": "Ваша роль этого не позволяет.",
        "fin_refused_unavailable": "Сервис выплат сейчас недоступен; попробуйте чуть позже. Ничего не изменено.",
        "fin_refused_other": "Система отказала (ошибка {status}). Ничего не изменено.",
        "fin_donor_report_title": "Отчёт для донора: {code}",
        "fin_donor_report_help": "То, что может видеть донор: суммы гранта и что выплачено по месяцам и категориям — "
        "в людях и выплатах, без дел и имён.",
        "fin_suppression": "Ни одно число меньше {n} не показывается: клетка, где людей меньше, скрыта, а вместе с "
        "ней — столько самых маленьких из остальных, сколько нужно, чтобы скрытые нельзя было вычислить из итогов.",
        "fin_people_helped": "Получили помощь, человек", "fin_people_hidden": "меньше {n}: не показывается",
        "fin_month": "Месяц", "fin_people": "Людей", "fin_payments": "Выплат", "fin_cell_hidden": "скрыто",
        "fin_no_payments": "Из этого гранта пока ничего не выплачено.", "fin_generated": "Сформирован",
        "fin_month_1": "Январь", "fin_month_2": "Февраль", "fin_month_3": "Март", "fin_month_4": "Апрель",
        "fin_month_5": "Май", "fin_month_6": "Июнь", "fin_month_7": "Июль", "fin_month_8": "Август",
        "fin_month_9": "Сентябрь", "fin_month_10": "Октябрь", "fin_month_11": "Ноябрь", "fin_month_12": "Декабрь",
    },
    "be": {
        "fin_grants_intro": "Бюджэт кожнага гранта і яго стан: выплачана, зарэзервавана пад ухваленыя запыты і "
        "яшчэ даступна.",
        "fin_bar_label": "З бюджэту выплачана {paid}, зарэзервавана {committed}, даступна {available}",
        "fin_period": "Тэрмін", "fin_pays_for": "Аплочвае", "fin_grant_running": "дзейнічае",
        "fin_grant_ended": "завершаны", "fin_grant_not_started": "яшчэ не пачаўся",
        "fin_grants_none": "Грантаў пакуль няма: стварыце першы ніжэй.",
        "fin_more_grants": "Грантаў больш, чым паказана на гэтай старонцы.",
        "fin_new_grant": "Новы грант",
        "fin_grant_help": "Увесь бюджэт адразу становіцца даступным. Код пазначае грант у запытах і справаздачах.",
        "fin_code_hint": "Лацінскія літары, лічбы і . _ / - (да 40 знакаў), напр. EU-2026/03.",
        "fin_currency": "Валюта",
        "fin_budget_hint": "У валюце гранта, напр. 10 000,00 (у іены няма дробнай часткі: 1 500 000).",
        "fin_starts_on": "Пачатак", "fin_ends_on": "Заканчэнне", "fin_categories": "На што ідуць сродкі",
        "fin_create_grant": "Стварыць грант",
        "fin_done_created": "Грант створаны; увесь яго бюджэт даступны.",
        "fin_error_code": "Толькі лацінскія літары, лічбы і . _ / -, напачатку літара або лічба, не больш за 40 "
        "знакаў.",
        "fin_error_code_taken": "Грант з такім кодам ужо ёсць; выберыце іншы код.",
        "fin_error_currency": "Выберыце валюту са спіса.",
        "fin_error_amount": "Сума больш за нуль, напрыклад {example}.",
        "fin_error_amount_whole": "Цэлая сума больш за нуль, без дробнай часткі, напрыклад {example}.",
        "fin_error_ends_on": "Грант не можа скончыцца раней, чым пачнецца.",
        "fin_error_categories": "Выберыце хаця б адну.",
        "fin_error_donor": "Адзін радок тэксту, не больш за 200 знакаў.",
        "fin_grant_title": "Грант {code}", "fin_all_grants": "Усе гранты",
        "fin_grant_disbursements": "Выплаты з гэтага гранта",
        "fin_no_disbursements": "Выплат з гэтага гранта пакуль няма.",
        "fin_donor_report": "Справаздача для донара", "fin_donor_csv": "Справаздача для донара (CSV)",
        "fin_queue_help": "Ухваленне рэзервуе суму з гранта; выплата запісваецца адзін раз. «Адхіліць» — адмовіць у "
        "запыце; «Ануляваць» — скасаваць запыт, зроблены памылкова; і тое, і другое вяртае ўхваленую суму ў грант. "
        "Выплачанае змяніць ужо нельга.",
        "fin_view_todo": "Чакаюць дзеянняў", "fin_view_requested": "Чакаюць ухвалення",
        "fin_view_approved": "Ухваленыя, да выплаты", "fin_view_paid": "Выплачаныя", "fin_view_rejected": "Адхіленыя",
        "fin_view_voided": "Ануляваныя",
        "fin_case": "Справа", "fin_requested_by": "Хто запытаў", "fin_approved": "Ухвалена",
        "fin_rejected": "Адхілена", "fin_voided": "Анулявана", "fin_paid": "Выплачана",
        "fin_payee": "Атрымальнік", "fin_payee_none": "не пазначаны: сам чалавек",
        "fin_payee_kind_iban": "IBAN", "fin_payee_kind_card": "Картка", "fin_payee_kind_phone": "Тэлефон",
        "fin_payee_kind_account": "Рахунак", "fin_ending_in": "заканчваецца на", "fin_name_hidden": "імя схавана",
        "fin_show_payee": "Паказаць атрымальніка",
        "fin_payee_shown": "Паказана цяпер; гэты прагляд запісаны ў журнал аўдыту.",
        "fin_erased": "сцёрта разам са справай",
        "fin_four_eyes": "Гэты запыт зрабілі вы. Паводле правіла чатырох вачэй яго ўхваляе іншы супрацоўнік "
        "фінансавага аддзела.",
        "fin_void": "Ануляваць",
        "fin_method_bank_transfer": "Банкаўскі пераказ", "fin_method_card": "Картка", "fin_method_cash": "Наяўныя",
        "fin_method_mobile_money": "Мабільны плацёж", "fin_method_crypto": "Крыптавалюта",
        "fin_method_other": "Іншае",
        "fin_reference_hint": "Нумар з банка або касавай кнігі: лацінскія літары, лічбы і . _ / # : - — без "
        "імёнаў.",
        "fin_error_reference": "Толькі лацінскія літары, лічбы і . _ / # : -, напачатку літара або лічба, не больш "
        "за 64 знакі.",
        "fin_done_approved": "Ухвалена: сума зарэзервавана з гранта.",
        "fin_done_rejected": "Адхілена; нічога не будзе выплачана.",
        "fin_done_voided": "Анулявана; нічога не будзе выплачана.",
        "fin_done_paid": "Выплата запісана.", "fin_more_waiting": "Тут паказана не ўсё:",
        "fin_refused_four_eyes": "Гэтую выплату запыталі вы самі: паводле правіла чатырох вачэй яе павінен ухваліць "
        "іншы супрацоўнік фінансавага аддзела. Нічога не зменена.",
        "fin_refused_already_paid": "Гэтая выплата ўжо зроблена; яе нельга ні змяніць, ні выплаціць паўторна.",
        "fin_refused_changed": "Нехта іншы ўжо прыняў рашэнне па гэтай выплаце; ніжэй яна паказана такой, якая яна "
        "цяпер. Нічога не зменена.",
        "fin_refused_funds_short": "У гранце {code} даступна {available} — менш за запытаныя {amount}. Нічога не "
        "ўхвалена.",
        "fin_refused_grant_period": "Грант {code} дзейнічае з {start} па {end}; сённяшні дзень па-за гэтым "
        "тэрмінам. Нічога не ўхвалена.",
        "fin_refused_grant_category": "Грант {code} не аплочвае гэтую катэгорыю ({category}). Нічога не ўхвалена.",
        "fin_refused_currency": "Грант плаціць у іншай валюце, чым пазначана ў гэтай выплаце. Нічога не ўхвалена.",
        "fin_refused_case_closed": "Справа гэтай выплаты закрытая: дапамогу па ёй ухваліць нельга.",
        "fin_refused_case_erased": "Справа гэтай выплаты сцёртая: дапамогу па ёй ухваліць нельга.",
        "fin_refused_case_duplicate": "Справа гэтай выплаты пазначана як дублікат: дапамогу запытваюць у справе, "
        "якая засталася.",
        "fin_refused_case_unknown": "Сэрвіс выплат яшчэ не ведае пра справу гэтай выплаты; паспрабуйце праз "
        "хвіліну.",
        "fin_refused_not_found": "Такой выплаты няма.",
        "fin_refused_in_flight": "Гэта ўжо запісваецца (форма адпраўлена двойчы); праз імгненне старонка гэта "
        "пакажа.",
        "fin_refused_key_reused": "Гэтая форма ўжо была адпраўлена з іншымі значэннямі. Больш нічога не зроблена: "
        "праверце выплату ніжэй і пры неабходнасці адпраўце новую форму.",
        "fin_refused_forbidden": "Ваша роля гэтага не дазваляе.",
        "fin_refused_unavailable": "Сэрвіс выплат цяпер недаступны; паспрабуйце крыху пазней. Нічога не зменена.",
        "fin_refused_other": "Сістэма адмовіла (памылка {status}). Нічога не зменена.",
        "fin_donor_report_title": "Справаздача для донара: {code}",
        "fin_donor_report_help": "Тое, што можа бачыць донар: сумы гранта і што выплачана па месяцах і катэгорыях — "
        "у людзях і выплатах, без справаў і імёнаў.",
        "fin_suppression": "Ніводная лічба меншая за {n} не паказваецца: клетка, дзе людзей менш, схаваная, а разам "
        "з ёй — столькі самых малых з астатніх, колькі трэба, каб схаваныя нельга было вылічыць з вынікаў.",
        "fin_people_helped": "Атрымалі дапамогу, чалавек", "fin_people_hidden": "менш за {n}: не паказваецца",
        "fin_month": "Месяц", "fin_people": "Людзей", "fin_payments": "Выплат", "fin_cell_hidden": "схавана",
        "fin_no_payments": "З гэтага гранта пакуль нічога не выплачана.", "fin_generated": "Складзена",
        "fin_month_1": "Студзень", "fin_month_2": "Люты", "fin_month_3": "Сакавік", "fin_month_4": "Красавік",
        "fin_month_5": "Травень", "fin_month_6": "Чэрвень", "fin_month_7": "Ліпень", "fin_month_8": "Жнівень",
        "fin_month_9": "Верасень", "fin_month_10": "Кастрычнік", "fin_month_11": "Лістапад",
        "fin_month_12": "Снежань",
    },
}
for _language, _words in _FINANCE_MESSAGES.items():
    MESSAGES[_language].update(_words)

# A referral's own page for the case's caseworkers and the messages with its partner (issue #18). Counts are written
# "new: 3", a form every language reads right without plural rules.
_THREAD_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "new_messages_title": "New messages from partners", "referral_of_case": "A referral of your case",
        "unread_count": "new: {count}", "referral_title": "Referral", "back_to_case": "Back to the case",
        "referral_overdue": "overdue: no answer from the partner in time",
        "packet_title": "What the partner sees", "packet_name": "Name", "packet_language": "Language",
        "packet_contact": "Contact", "packet_note": "Note for the partner", "packet_health": "Health summary",
        "packet_gone": "The person's consent no longer covers this referral: what was sent to the partner, and the "
        "messages, were destroyed. The partner sees only that the referral exists.",
        "messages_title": "Messages with the partner", "message_from_caseworker": "Caseworker",
        "message_from_partner": "Partner", "no_messages": "No messages yet.",
        "message_to_partner": "Write to the partner",
        "message_help": "The partner reads this under the same consent as the referral. Write only what they need.",
        "message_send": "Send", "referral_next_steps": "Next steps",
        "mark_need_met": "Mark the need met: {need}", "cancel_referral": "Cancel the referral",
        "problem_referral_closed": "This referral was closed more than 30 days ago: the messages can be read, no "
        "new one can be written.",
        "problem_packet_withdrawn": "The person's consent no longer covers this referral: no message can be "
        "written.",
        "problem_referral_moved": "The referral has moved on meanwhile and cannot be cancelled now.",
    },
    "ru": {
        "new_messages_title": "Новые сообщения от партнёров", "referral_of_case": "Направление по вашему делу",
        "unread_count": "новых: {count}", "referral_title": "Направление", "back_to_case": "Назад к делу",
        "referral_overdue": "просрочено: партнёр не ответил вовремя",
        "packet_title": "Что видит партнёр", "packet_name": "Имя", "packet_language": "Язык",
        "packet_contact": "Контакт", "packet_note": "Заметка для партнёра", "packet_health": "О здоровье",
        "packet_gone": "Согласие человека больше не распространяется на это направление: отправленное партнёру "
        "и сообщения уничтожены. Партнёр видит только, что направление существует.",
        "messages_title": "Переписка с партнёром", "message_from_caseworker": "Сотрудник",
        "message_from_partner": "Партнёр", "no_messages": "Сообщений пока нет.",
        "message_to_partner": "Написать партнёру",
        "message_help": "Партнёр читает это на тех же условиях согласия, что и направление. Пишите только "
        "нужное.",
        "message_send": "Отправить", "referral_next_steps": "Дальнейшие шаги",
        "mark_need_met": "Отметить потребность закрытой: {need}", "cancel_referral": "Отменить направление",
        "problem_referral_closed": "Направление закрыто больше 30 дней назад: переписку можно читать, но новые "
        "сообщения писать нельзя.",
        "problem_packet_withdrawn": "Согласие человека больше не распространяется на это направление: писать "
        "сообщения нельзя.",
        "problem_referral_moved": "Направление тем временем перешло на другой этап, и его уже нельзя отменить.",
    },
    "be": {
        "new_messages_title": "Новыя паведамленні ад партнёраў", "referral_of_case": "Накіраванне па вашай справе",
        "unread_count": "новых: {count}", "referral_title": "Накіраванне", "back_to_case": "Назад да справы",
        "referral_overdue": "пратэрмінавана: партнёр не адказаў своечасова",
        "packet_title": "Што бачыць партнёр", "packet_name": "Імя", "packet_language": "Мова",
        "packet_contact": "Кантакт", "packet_note": "Нататка для партнёра", "packet_health": "Пра здароўе",
        "packet_gone": "Згода чалавека больш не ахоплівае гэтае накіраванне: дасланае партнёру і паведамленні "
        "знішчаныя. Партнёр бачыць толькі, што накіраванне існуе.",
        "messages_title": "Перапіска з партнёрам", "message_from_caseworker": "Супрацоўнік",
        "message_from_partner": "Партнёр", "no_messages": "Паведамленняў пакуль няма.",
        "message_to_partner": "Напісаць партнёру",
        "message_help": "Партнёр чытае гэта на тых жа ўмовах згоды, што і накіраванне. Пішыце толькі патрэбнае.",
        "message_send": "Адправіць", "referral_next_steps": "Далейшыя крокі",
        "mark_need_met": "Адзначыць патрэбу закрытай: {need}", "cancel_referral": "Скасаваць накіраванне",
        "problem_referral_closed": "Накіраванне закрыта больш за 30 дзён таму: перапіску можна чытаць, але новыя "
        "паведамленні пісаць нельга.",
        "problem_packet_withdrawn": "Згода чалавека больш не ахоплівае гэтае накіраванне: пісаць паведамленні "
        "нельга.",
        "problem_referral_moved": "Накіраванне тым часам перайшло на іншы этап, і яго ўжо нельга скасаваць.",
    },
}
for _language, _words in _THREAD_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The admin's partner pages: the directory, a partner's details, its webhook (the secret shown once) and deliveries
# (issue #18). A dead letter is a delivery still failing after 24 hours of retries: nothing retries it after that.
_PARTNERS_ADMIN_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "padmin_partners": "Partners",
        "padmin_directory_explained": "The organisations caseworkers refer people to. A partner closed to new "
        "referrals is not offered on the referral form.",
        "padmin_name": "Name", "padmin_id": "Partner id",
        "padmin_countries": "Countries", "padmin_countries_help": "Two-letter codes separated by commas, e.g. LT, PL.",
        "padmin_cities": "Cities", "padmin_cities_help": "Separated by commas, e.g. Vilnius, Warszawa.",
        "padmin_languages": "Languages", "padmin_languages_help": "Language codes separated by commas, e.g. be, ru, pl.",
        "padmin_contact_email": "Contact e-mail", "padmin_capacity_note": "Capacity",
        "padmin_capacity_note_help": "For caseworkers: how many people the partner can take now, how long the wait "
        "is (up to 500 characters).",
        "padmin_active": "Open to new referrals", "padmin_open": "open to referrals",
        "padmin_closed": "closed to new referrals",
        "padmin_category_fixed": "The category cannot be changed later: the consent of referrals already sent was "
        "checked against it. For another category, add another partner.",
        "padmin_add": "Add a partner", "padmin_add_button": "Add the partner",
        "padmin_none": "No partner in the directory yet.",
        "padmin_more": "The directory has more partners than this page shows.",
        "padmin_details": "Details", "padmin_edit": "Change the details", "padmin_save": "Save the changes",
        "padmin_created_at": "Added", "padmin_updated_at": "Changed",
        "padmin_done_created": "The partner is added to the directory.",
        "padmin_done_updated": "The partner's details are saved.",
        "padmin_error_language": "Language codes, like be, ru or pl.",
        "padmin_error_category": "Choose one of the categories listed.",
        "padmin_webhook": "Webhook", "padmin_webhook_set_short": "set", "padmin_webhook_none_short": "none",
        "padmin_dead_letters_short": "dead letters",
        "padmin_webhook_explained": "Instead of asking the system for new referrals, the partner's server is told "
        "at once: a signed POST (Standard Webhooks) with the referral's id and state only, never anything about the "
        "person.",
        "padmin_webhook_none": "This partner has no webhook: it learns of referrals only when it asks.",
        "padmin_webhook_url": "Address of the partner's receiver",
        "padmin_webhook_url_help": "An https address, e.g. https://clinic.example/hooks/rehab. Deliveries never go "
        "over plain http, nor to a private or local network address.",
        "padmin_webhook_events": "What to send",
        "padmin_webhook_events_help": "The partner is told only of what is ticked.",
        "padmin_event_sent": "A referral is sent to the partner",
        "padmin_event_sent_help": "referral.sent: a caseworker has sent this partner a new referral.",
        "padmin_event_cancelled": "A referral is cancelled",
        "padmin_event_cancelled_help": "referral.cancelled: a caseworker has cancelled a referral to this partner.",
        "padmin_event_message": "A new message on a referral",
        "padmin_event_message_help": "referral.message: a caseworker has written to the partner about a referral.",
        "padmin_webhook_set": "Set the webhook",
        "padmin_secret_once": "The signing secret is shown once, on the next page: have the partner's receiver "
        "settings at hand.",
        "padmin_webhook_address": "Address", "padmin_webhook_created": "Set",
        "padmin_webhook_rotated": "Secret last rotated", "padmin_rotation": "Signing secret",
        "padmin_rotation_under_way": "Rotation under way: the previous secret still signs every delivery (a second "
        "signature) until {until}.",
        "padmin_rotation_none": "One secret signs every delivery.",
        "padmin_rotate": "Rotate the secret",
        "padmin_rotate_help": "A new secret; the previous one keeps signing beside it for 24 hours, so the partner "
        "has time to switch.",
        "padmin_replace": "Replace the webhook",
        "padmin_replace_help": "A new address or events, and a new secret that alone signs from now on: the "
        "partner's receiver must get it at once. To change only the secret, rotate it instead.",
        "padmin_remove": "Remove the webhook", "padmin_remove_title": "Remove this partner's webhook?",
        "padmin_remove_explained": "Nothing more is sent to the partner's server; deliveries not yet made are "
        "dropped (they stay in the log). The partner then learns of referrals only when it asks. A webhook can be "
        "set again later, with a new secret.",
        "padmin_remove_confirm": "Yes, remove the webhook",
        "padmin_done_webhook_removed": "The webhook is removed: nothing more is sent to the partner, and deliveries "
        "not yet made are dropped.",
        "padmin_secret_title": "The signing secret: copy it now",
        "padmin_secret_explained": "Copy it now into the partner's receiver (for example its REHAB_WEBHOOK_SECRET "
        "setting), over a safe channel. It will not be shown again, here or anywhere: if it is lost, rotate the "
        "secret.",
        "padmin_secret_until": "The previous secret also signs until {until}: the partner can switch until then.",
        "padmin_done_webhook_set": "The webhook is set.",
        "padmin_done_webhook_replaced": "The webhook is replaced; the old secret no longer signs.",
        "padmin_done_rotated": "The secret is rotated.",
        "padmin_refused_https": "The address must begin with https://: deliveries are never sent in clear.",
        "padmin_refused_url": "Deliveries cannot go to this address: write it as https://name/path, without a user "
        "name, a password or a #.",
        "padmin_refused_address": "This address leads to a private, local or otherwise non-public network, or its "
        "name cannot be found: webhooks go only to public addresses.",
        "padmin_refused_events": "Tick at least one event.",
        "padmin_refused_no_webhook": "This partner has no webhook (any more).",
        "padmin_deliveries": "Deliveries",
        "padmin_deliveries_explained": "The last 50, newest first. A failed delivery is tried again for 24 hours; "
        "one still failing then is a dead letter, and nothing tries it again.",
        "padmin_deliveries_all": "All", "padmin_deliveries_dead": "Dead letters only",
        "padmin_no_deliveries": "No delivery yet.", "padmin_no_dead_letters": "No dead letter.",
        "padmin_delivery_id": "Webhook id", "padmin_delivery_type": "Event", "padmin_delivery_referral": "Referral",
        "padmin_delivery_attempts": "Attempts", "padmin_delivery_last": "Last answer", "padmin_delivery_times": "When",
        "padmin_delivery_created": "written", "padmin_delivery_last_attempt": "last attempt",
        "padmin_delivery_next": "next attempt", "padmin_delivery_finished": "finished",
        "padmin_type_sent": "referral sent", "padmin_type_cancelled": "referral cancelled",
        "padmin_type_message": "new message",
        "padmin_state_pending": "waiting", "padmin_state_delivered": "delivered", "padmin_state_dead": "dead letter",
        "padmin_state_dropped": "dropped (webhook removed)",
        "padmin_answer_ok": "accepted ({code})", "padmin_error_timeout": "no answer in time",
        "padmin_error_connect_failed": "could not connect", "padmin_error_protocol_error": "unreadable answer",
        "padmin_error_redirect": "a redirect ({code}), not followed",
        "padmin_error_http_status": "the receiver answered {code}",
        "padmin_error_address_refused": "the address is not public: nothing was sent",
    },
    "ru": {
        "padmin_partners": "Партнёры",
        "padmin_directory_explained": "Организации, в которые сотрудники направляют людей. Партнёр, закрытый для "
        "новых направлений, не предлагается в форме направления.",
        "padmin_name": "Название", "padmin_id": "Идентификатор партнёра",
        "padmin_countries": "Страны", "padmin_countries_help": "Двухбуквенные коды через запятую, например LT, PL.",
        "padmin_cities": "Города", "padmin_cities_help": "Через запятую, например Vilnius, Warszawa.",
        "padmin_languages": "Языки", "padmin_languages_help": "Коды языков через запятую, например be, ru, pl.",
        "padmin_contact_email": "Контактный адрес эл. почты", "padmin_capacity_note": "Возможности",
        "padmin_capacity_note_help": "Для сотрудников: сколько людей партнёр может принять сейчас, сколько ждать "
        "(до 500 знаков).",
        "padmin_active": "Принимает новые направления", "padmin_open": "принимает направления",
        "padmin_closed": "не принимает новых направлений",
        "padmin_category_fixed": "Категорию потом изменить нельзя: по ней проверялось согласие для уже "
        "отправленных направлений. Для другой категории добавьте другого партнёра.",
        "padmin_add": "Добавить партнёра", "padmin_add_button": "Добавить партнёра",
        "padmin_none": "В справочнике пока нет партнёров.",
        "padmin_more": "В справочнике больше партнёров, чем показано на этой странице.",
        "padmin_details": "Сведения", "padmin_edit": "Изменить сведения", "padmin_save": "Сохранить изменения",
        "padmin_created_at": "Добавлен", "padmin_updated_at": "Изменён",
        "padmin_done_created": "Партнёр добавлен в справочник.",
        "padmin_done_updated": "Сведения о партнёре сохранены.",
        "padmin_error_language": "Коды языков, например be, ru или pl.",
        "padmin_error_category": "Выберите одну из категорий списка.",
        "padmin_webhook": "Вебхук", "padmin_webhook_set_short": "есть", "padmin_webhook_none_short": "нет",
        "padmin_dead_letters_short": "есть недоставленные",
        "padmin_webhook_explained": "Вместо того чтобы спрашивать систему о новых направлениях, сервер партнёра "
        "узнаёт о них сразу: подписанный POST (Standard Webhooks) только с идентификатором и состоянием "
        "направления, никогда ничего о человеке.",
        "padmin_webhook_none": "У этого партнёра нет вебхука: о направлениях он узнаёт, только когда спрашивает "
        "сам.",
        "padmin_webhook_url": "Адрес приёмника партнёра",
        "padmin_webhook_url_help": "Адрес https, например https://clinic.example/hooks/rehab. Доставки никогда не "
        "идут по открытому http или на адрес частной или локальной сети.",
        "padmin_webhook_events": "Что отправлять",
        "padmin_webhook_events_help": "Партнёр узнаёт только об отмеченном.",
        "padmin_event_sent": "Партнёру отправлено направление",
        "padmin_event_sent_help": "referral.sent: сотрудник отправил этому партнёру новое направление.",
        "padmin_event_cancelled": "Направление отменено",
        "padmin_event_cancelled_help": "referral.cancelled: сотрудник отменил направление к этому партнёру.",
        "padmin_event_message": "Новое сообщение по направлению",
        "padmin_event_message_help": "referral.message: сотрудник написал партнёру о направлении.",
        "padmin_webhook_set": "Установить вебхук",
        "padmin_secret_once": "Секрет подписи будет показан один раз, на следующей странице: держите под рукой "
        "настройки приёмника партнёра.",
        "padmin_webhook_address": "Адрес", "padmin_webhook_created": "Установлен",
        "padmin_webhook_rotated": "Секрет последний раз заменён", "padmin_rotation": "Секрет подписи",
        "padmin_rotation_under_way": "Идёт замена секрета: прежний секрет ещё подписывает каждую доставку (вторая "
        "подпись) до {until}.",
        "padmin_rotation_none": "Каждую доставку подписывает один секрет.",
        "padmin_rotate": "Заменить секрет",
        "padmin_rotate_help": "Новый секрет; прежний подписывает рядом с ним ещё 24 часа, чтобы партнёр успел "
        "перейти.",
        "padmin_replace": "Заменить вебхук",
        "padmin_replace_help": "Новый адрес или события и новый секрет, который с этого момента подписывает один: "
        "приёмник партнёра должен получить его сразу. Чтобы сменить только секрет, замените секрет.",
        "padmin_remove": "Удалить вебхук", "padmin_remove_title": "Удалить вебхук этого партнёра?",
        "padmin_remove_explained": "На сервер партнёра больше ничего не отправляется; ещё не сделанные доставки "
        "отменяются (остаются в журнале). После этого партнёр узнаёт о направлениях, только когда спрашивает сам. "
        "Вебхук можно установить снова позже, с новым секретом.",
        "padmin_remove_confirm": "Да, удалить вебхук",
        "padmin_done_webhook_removed": "Вебхук удалён: партнёру больше ничего не отправляется, ещё не сделанные "
        "доставки отменены.",
        "padmin_secret_title": "Секрет подписи: скопируйте его сейчас",
        "padmin_secret_explained": "Скопируйте его сейчас в приёмник партнёра (например, в его настройку "
        "REHAB_WEBHOOK_SECRET) по безопасному каналу. Больше он не будет показан ни здесь, ни где-либо ещё: если он "
        "потеряется, замените секрет.",
        "padmin_secret_until": "Прежний секрет тоже подписывает до {until}: до тех пор партнёр может перейти на "
        "новый.",
        "padmin_done_webhook_set": "Вебхук установлен.",
        "padmin_done_webhook_replaced": "Вебхук заменён; старый секрет больше не подписывает.",
        "padmin_done_rotated": "Секрет заменён.",
        "padmin_refused_https": "Адрес должен начинаться с https://: доставки никогда не отправляются открыто.",
        "padmin_refused_url": "На этот адрес доставлять нельзя: пишите его как https://имя/путь, без имени "
        "пользователя, пароля и #.",
        "padmin_refused_address": "Этот адрес ведёт в частную, локальную или иную непубличную сеть, или его имя не "
        "находится: вебхуки идут только на публичные адреса.",
        "padmin_refused_events": "Отметьте хотя бы одно событие.",
        "padmin_refused_no_webhook": "У этого партнёра (уже) нет вебхука.",
        "padmin_deliveries": "Доставки",
        "padmin_deliveries_explained": "Последние 50, новые первыми. Неудавшуюся доставку повторяют 24 часа; если "
        "она и тогда не проходит, она окончательно не доставлена, и её больше не повторяют.",
        "padmin_deliveries_all": "Все", "padmin_deliveries_dead": "Только окончательно недоставленные",
        "padmin_no_deliveries": "Доставок пока нет.", "padmin_no_dead_letters": "Окончательно недоставленных нет.",
        "padmin_delivery_id": "Идентификатор (webhook-id)", "padmin_delivery_type": "Событие",
        "padmin_delivery_referral": "Направление", "padmin_delivery_attempts": "Попыток",
        "padmin_delivery_last": "Последний ответ", "padmin_delivery_times": "Когда",
        "padmin_delivery_created": "записана", "padmin_delivery_last_attempt": "последняя попытка",
        "padmin_delivery_next": "следующая попытка", "padmin_delivery_finished": "завершена",
        "padmin_type_sent": "направление отправлено", "padmin_type_cancelled": "направление отменено",
        "padmin_type_message": "новое сообщение",
        "padmin_state_pending": "ждёт", "padmin_state_delivered": "доставлена",
        "padmin_state_dead": "окончательно не доставлена", "padmin_state_dropped": "отменена (вебхук удалён)",
        "padmin_answer_ok": "принята ({code})", "padmin_error_timeout": "нет ответа вовремя",
        "padmin_error_connect_failed": "не удалось соединиться", "padmin_error_protocol_error": "ответ не читается",
        "padmin_error_redirect": "перенаправление ({code}), не выполнялось",
        "padmin_error_http_status": "приёмник ответил {code}",
        "padmin_error_address_refused": "адрес не публичный: ничего не отправлено",
    },
    "be": {
        "padmin_partners": "Партнёры",
        "padmin_directory_explained": "Арганізацыі, да якіх супрацоўнікі накіроўваюць людзей. Партнёр, закрыты для "
        "новых накіраванняў, не прапануецца ў форме накіравання.",
        "padmin_name": "Назва", "padmin_id": "Ідэнтыфікатар партнёра",
        "padmin_countries": "Краіны", "padmin_countries_help": "Двухлітарныя коды праз коску, напрыклад LT, PL.",
        "padmin_cities": "Гарады", "padmin_cities_help": "Праз коску, напрыклад Vilnius, Warszawa.",
        "padmin_languages": "Мовы", "padmin_languages_help": "Коды моў праз коску, напрыклад be, ru, pl.",
        "padmin_contact_email": "Кантактны адрас эл. пошты", "padmin_capacity_note": "Магчымасці",
        "padmin_capacity_note_help": "Для супрацоўнікаў: колькі людзей партнёр можа прыняць цяпер, колькі чакаць "
        "(да 500 знакаў).",
        "padmin_active": "Прымае новыя накіраванні", "padmin_open": "прымае накіраванні",
        "padmin_closed": "не прымае новых накіраванняў",
        "padmin_category_fixed": "Катэгорыю потым змяніць нельга: па ёй правяралася згода для ўжо дасланых "
        "накіраванняў. Для іншай катэгорыі дадайце іншага партнёра.",
        "padmin_add": "Дадаць партнёра", "padmin_add_button": "Дадаць партнёра",
        "padmin_none": "У даведніку пакуль няма партнёраў.",
        "padmin_more": "У даведніку больш партнёраў, чым паказана на гэтай старонцы.",
        "padmin_details": "Звесткі", "padmin_edit": "Змяніць звесткі", "padmin_save": "Захаваць змены",
        "padmin_created_at": "Дададзены", "padmin_updated_at": "Зменены",
        "padmin_done_created": "Партнёр дададзены ў даведнік.",
        "padmin_done_updated": "Звесткі пра партнёра захаваныя.",
        "padmin_error_language": "Коды моў, напрыклад be, ru або pl.",
        "padmin_error_category": "Выберыце адну з катэгорый спіса.",
        "padmin_webhook": "Вэбхук", "padmin_webhook_set_short": "ёсць", "padmin_webhook_none_short": "няма",
        "padmin_dead_letters_short": "ёсць недастаўленыя",
        "padmin_webhook_explained": "Замест таго каб пытацца ў сістэмы пра новыя накіраванні, сервер партнёра "
        "даведваецца пра іх адразу: падпісаны POST (Standard Webhooks) толькі з ідэнтыфікатарам і станам "
        "накіравання, ніколі нічога пра чалавека.",
        "padmin_webhook_none": "У гэтага партнёра няма вэбхука: пра накіраванні ён даведваецца, толькі калі "
        "пытаецца сам.",
        "padmin_webhook_url": "Адрас прыёмніка партнёра",
        "padmin_webhook_url_help": "Адрас https, напрыклад https://clinic.example/hooks/rehab. Дастаўкі ніколі не "
        "ідуць па адкрытым http або на адрас прыватнай ці лакальнай сеткі.",
        "padmin_webhook_events": "Што дасылаць",
        "padmin_webhook_events_help": "Партнёр даведваецца толькі пра адзначанае.",
        "padmin_event_sent": "Партнёру даслана накіраванне",
        "padmin_event_sent_help": "referral.sent: супрацоўнік даслаў гэтаму партнёру новае накіраванне.",
        "padmin_event_cancelled": "Накіраванне скасавана",
        "padmin_event_cancelled_help": "referral.cancelled: супрацоўнік скасаваў накіраванне да гэтага партнёра.",
        "padmin_event_message": "Новае паведамленне па накіраванні",
        "padmin_event_message_help": "referral.message: супрацоўнік напісаў партнёру пра накіраванне.",
        "padmin_webhook_set": "Усталяваць вэбхук",
        "padmin_secret_once": "Сакрэт подпісу будзе паказаны адзін раз, на наступнай старонцы: трымайце пад рукой "
        "налады прыёмніка партнёра.",
        "padmin_webhook_address": "Адрас", "padmin_webhook_created": "Усталяваны",
        "padmin_webhook_rotated": "Сакрэт апошні раз заменены", "padmin_rotation": "Сакрэт подпісу",
        "padmin_rotation_under_way": "Ідзе замена сакрэту: папярэдні сакрэт яшчэ падпісвае кожную дастаўку "
        "(другі подпіс) да {until}.",
        "padmin_rotation_none": "Кожную дастаўку падпісвае адзін сакрэт.",
        "padmin_rotate": "Замяніць сакрэт",
        "padmin_rotate_help": "Новы сакрэт; папярэдні падпісвае побач з ім яшчэ 24 гадзіны, каб партнёр паспеў "
        "перайсці.",
        "padmin_replace": "Замяніць вэбхук",
        "padmin_replace_help": "Новы адрас або падзеі і новы сакрэт, які з гэтага моманту падпісвае адзін: "
        "прыёмнік партнёра павінен атрымаць яго адразу. Каб змяніць толькі сакрэт, замяніце сакрэт.",
        "padmin_remove": "Выдаліць вэбхук", "padmin_remove_title": "Выдаліць вэбхук гэтага партнёра?",
        "padmin_remove_explained": "На сервер партнёра больш нічога не дасылаецца; яшчэ не зробленыя дастаўкі "
        "скасоўваюцца (застаюцца ў журнале). Пасля гэтага партнёр даведваецца пра накіраванні, толькі калі "
        "пытаецца сам. Вэбхук можна ўсталяваць зноў пазней, з новым сакрэтам.",
        "padmin_remove_confirm": "Так, выдаліць вэбхук",
        "padmin_done_webhook_removed": "Вэбхук выдалены: партнёру больш нічога не дасылаецца, яшчэ не зробленыя "
        "дастаўкі скасаваныя.",
        "padmin_secret_title": "Сакрэт подпісу: скапіруйце яго зараз",
        "padmin_secret_explained": "Скапіруйце яго зараз у прыёмнік партнёра (напрыклад, у яго наладу "
        "REHAB_WEBHOOK_SECRET) па бяспечным канале. Больш ён не будзе паказаны ні тут, ні дзе-небудзь яшчэ: калі ён "
        "згубіцца, замяніце сакрэт.",
        "padmin_secret_until": "Папярэдні сакрэт таксама падпісвае да {until}: да таго часу партнёр можа перайсці "
        "на новы.",
        "padmin_done_webhook_set": "Вэбхук усталяваны.",
        "padmin_done_webhook_replaced": "Вэбхук заменены; стары сакрэт больш не падпісвае.",
        "padmin_done_rotated": "Сакрэт заменены.",
        "padmin_refused_https": "Адрас павінен пачынацца з https://: дастаўкі ніколі не дасылаюцца адкрыта.",
        "padmin_refused_url": "На гэты адрас дастаўляць нельга: пішыце яго як https://імя/шлях, без імя "
        "карыстальніка, пароля і #.",
        "padmin_refused_address": "Гэты адрас вядзе ў прыватную, лакальную ці іншую непублічную сетку, або яго імя "
        "не знаходзіцца: вэбхукі ідуць толькі на публічныя адрасы.",
        "padmin_refused_events": "Адзначце хаця б адну падзею.",
        "padmin_refused_no_webhook": "У гэтага партнёра (ужо) няма вэбхука.",
        "padmin_deliveries": "Дастаўкі",
        "padmin_deliveries_explained": "Апошнія 50, новыя першымі. Няўдалую дастаўку паўтараюць 24 гадзіны; калі "
        "яна і тады не праходзіць, яна канчаткова не дастаўлена, і яе больш не паўтараюць.",
        "padmin_deliveries_all": "Усе", "padmin_deliveries_dead": "Толькі канчаткова недастаўленыя",
        "padmin_no_deliveries": "Даставак пакуль няма.", "padmin_no_dead_letters": "Канчаткова недастаўленых няма.",
        "padmin_delivery_id": "Ідэнтыфікатар (webhook-id)", "padmin_delivery_type": "Падзея",
        "padmin_delivery_referral": "Накіраванне", "padmin_delivery_attempts": "Спроб",
        "padmin_delivery_last": "Апошні адказ", "padmin_delivery_times": "Калі",
        "padmin_delivery_created": "запісана", "padmin_delivery_last_attempt": "апошняя спроба",
        "padmin_delivery_next": "наступная спроба", "padmin_delivery_finished": "скончана",
        "padmin_type_sent": "накіраванне даслана", "padmin_type_cancelled": "накіраванне скасавана",
        "padmin_type_message": "новае паведамленне",
        "padmin_state_pending": "чакае", "padmin_state_delivered": "дастаўлена",
        "padmin_state_dead": "канчаткова не дастаўлена", "padmin_state_dropped": "скасавана (вэбхук выдалены)",
        "padmin_answer_ok": "прынята ({code})", "padmin_error_timeout": "няма адказу своечасова",
        "padmin_error_connect_failed": "не ўдалося злучыцца", "padmin_error_protocol_error": "адказ не чытаецца",
        "padmin_error_redirect": "перанакіраванне ({code}), не выконвалася",
        "padmin_error_http_status": "прыёмнік адказаў {code}",
        "padmin_error_address_refused": "адрас не публічны: нічога не даслана",
    },
}
for _language, _words in _PARTNERS_ADMIN_MESSAGES.items():
    MESSAGES[_language].update(_words)

# The auditor's pages (console/audit_pages.py, issue #19): every service's audit trail, each chain's verification
# in words, the break-glass openings. `audit.<action>`: an action a trail holds, in words (one without is shown raw).
_AUDIT_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "audit_title": "Audit trail",
        "audit_explained": "Who did what, when, to which record, in which request — never the data itself. Each "
        "service keeps its own trail, every entry chained to the one before it: an entry changed, removed or moved "
        "breaks the chain there.",
        "audit_trails": "Trails", "audit_service_intake": "Cases (intake)", "audit_service_referrals": "Referrals",
        "audit_service_funds": "Aid (funds)", "audit_service_gateway": "Sign-ins and accounts (gateway)",
        "audit_break_glass": "Break-glass openings", "audit_verification": "Verification",
        "audit_verification_explained": "Each service's chain, checked just now from its first entry to its last and "
        "against its newest signed checkpoint.",
        "audit_service": "Service", "audit_verdict": "Result", "audit_kind_intact": "Intact",
        "audit_kind_broken": "Broken", "audit_kind_warning": "Not confirmed", "audit_kind_unknown": "Not checked",
        "audit_verdict_intact": "Every entry follows from the one before it, and nothing that was signed is missing. "
        "Entries: {n}.",
        "audit_verdict_broken": "The first bad entry is {id}, number {position} in the chain: it does not follow from "
        "the entry before it. It was changed, or the entry before it was removed or moved.",
        "audit_verdict_truncated": "The entries follow from one another, but entries that were signed in a checkpoint "
        "are gone from the end of the chain. Entries: {n}.",
        "audit_verdict_diverged": "The entries follow from one another, but the entry the newest checkpoint signed is "
        "not in the chain: entries were removed and others written in their place. Entries: {n}.",
        "audit_verdict_forged": "The newest checkpoint is not signed with this service's key, so it confirms nothing. "
        "Entries: {n}.",
        "audit_verdict_missing": "The entries follow from one another, but there is no signed checkpoint of them "
        "although one is overdue: entries removed from the end would not show. Entries: {n}.",
        "audit_verdict_unavailable": "The entries follow from one another, but the signed checkpoints could not be "
        "read (the message server did not answer): entries removed from the end were not looked for. Entries: {n}.",
        "audit_verdict_no_key": "The entries follow from one another, but there is no key here to check the signed "
        "checkpoints with: entries removed from the end were not looked for. Entries: {n}.",
        "audit_verdict_not_vouched": "The chain is not confirmed. Entries: {n}.",
        "audit_verdict_unknown": "The service did not answer, or its keys are sealed. Try again shortly.",
        "audit_filter_target": "Record id",
        "audit_filter_target_help": "The id of a case, referral, grant, aid request, partner or account, e.g. "
        "0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f. It is sent with the form, never in the page's address.",
        "audit_bad_target": "This is not an id. An id has 36 characters — letters a–f, digits and hyphens — e.g. "
        "0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f (an API client's: pc_ and 24 characters).",
        "audit_filter_action": "Action", "audit_any_action": "Any action", "audit_filter_button": "Show",
        "audit_filtered": "Only these entries are shown:", "audit_filtered_target": "record",
        "audit_filtered_action": "action", "audit_show_all": "Show every entry",
        "audit_newest_first": "Newest first. Times are UTC.", "audit_at": "When (UTC)", "audit_actor": "Who",
        "audit_action": "What", "audit_target": "Record", "audit_request": "Request id", "audit_entry": "Entry",
        "audit_only_this_record": "Only this record", "audit_first_bad_here": "the first bad entry",
        "audit_no_entries": "No entries.", "audit_actor_system": "The system",
        "audit_actor_unknown": "Unknown user name", "audit_action_other": "Other action:",
        "audit_unread": "The trail “{service}” could not be read: the service did not answer. Try again shortly.",
        "audit_bad_cursor": "This page of the trail “{service}” cannot be found any more; start again from its first "
        "page.",
        "audit_break_glass_explained": "Every time someone opened a case not assigned to them by stating why "
        "(need-to-know): who, which case, when. Each request made under a stated reason is an entry of its own, so one "
        "opening may show as several.",
        "audit_break_glass_reason": "The reason itself is not in the audit trail: it is kept encrypted with the case, "
        "and the case's caseworkers read it on its timeline.",
        "audit_case_id": "Case id", "audit_case_entries": "Every entry about this case",
        "audit_no_openings": "No case has been opened without assignment.",
        "audit_break_glass_elsewhere": "These are the openings of case files (intake). Referrals and aid record their "
        "own: on their trails, choose the action “{action}”.",
        "audit.case.create": "Case created", "audit.case.read": "Case read",
        "audit.case.update": "Case details changed", "audit.case.search": "Search by name (the name is not kept)",
        "audit.case.duplicate-check": "Duplicate check (the name is not kept)",
        "audit.case.assign": "Caseworkers assigned", "audit.case.close": "Case closed",
        "audit.case.reopen": "Case reopened", "audit.case.duplicate": "Case marked a duplicate",
        "audit.case.erase": "Case erased", "audit.case.break_glass": "Opened without assignment (reason stated)",
        "audit.needs.add": "Need added", "audit.needs.read": "Needs read", "audit.needs.status": "Need moved",
        "audit.consent.set": "Consent recorded", "audit.consent.read": "Consent read",
        "audit.timeline.read": "Timeline read", "audit.notes.add": "Note written", "audit.notes.read": "Notes read",
        "audit.tasks.add": "Task given", "audit.tasks.read": "Tasks read", "audit.tasks.done": "Task done",
        "audit.document.add": "Document added", "audit.documents.read": "Documents listed",
        "audit.document.download": "Document downloaded", "audit.referral.create": "Referral sent",
        "audit.referral.read": "Referral read", "audit.referral.cancel": "Referral cancelled",
        "audit.referral.message.write": "Message to the partner",
        "audit.referral.message.read": "Messages read (caseworker)",
        "audit.referral.packet.destroy": "Referral packet destroyed",
        "audit.partner.referral.read": "Referral read by the partner",
        "audit.partner.referral.accept": "Accepted by the partner",
        "audit.partner.referral.decline": "Declined by the partner",
        "audit.partner.referral.start": "Work started by the partner",
        "audit.partner.referral.complete": "Completed by the partner",
        "audit.partner.referral.message.write": "Message from the partner",
        "audit.partner.referral.message.read": "Messages read (partner)",
        "audit.partner.referral.denied": "Partner refused: not their referral", "audit.partner.create": "Partner added",
        "audit.partner.update": "Partner's details changed", "audit.partner.webhook.set": "Partner's webhook set",
        "audit.partner.webhook.rotate": "Webhook secret rotated",
        "audit.partner.webhook.delete": "Partner's webhook removed", "audit.grant.create": "Grant created",
        "audit.disbursement.request": "Aid requested", "audit.disbursement.read": "Aid request read",
        "audit.payee.read": "Payee shown", "audit.disbursement.approve": "Aid approved",
        "audit.disbursement.reject": "Aid rejected", "audit.disbursement.pay": "Aid paid",
        "audit.disbursement.void": "Aid voided", "audit.case.shred": "Case's aid data destroyed after erasure",
        "audit.signin.ok": "Signed in", "audit.signin.failed": "Failed sign-in",
        "audit.signin.refused": "Sign-in refused: account disabled or awaiting approval",
        "audit.signin.throttled": "Sign-in held back: too many attempts",
        "audit.user.locked": "Account locked after failed sign-ins",
        "audit.user.locked_everywhere": "Account locked from every address", "audit.user.unlock": "Account unlocked",
        "audit.user.create": "Account created", "audit.user.roles": "Roles changed",
        "audit.user.disable": "Account disabled", "audit.user.enable": "Account enabled",
        "audit.user.password": "Password changed", "audit.mfa.enrolled": "Second factor set up",
        "audit.mfa.reset": "Second factor reset", "audit.session.revoke": "Session ended",
        "audit.session.revoke_all": "Signed out everywhere",
        "audit.session.refresh_reused": "Session ended: a refresh token was used twice",
        "audit.client.create": "API client created", "audit.client.revoke": "API client revoked",
        "audit.approval.request": "Approval asked for", "audit.approval.approve": "Request approved",
        "audit.approval.reject": "Request rejected", "audit.keys.sealed": "Keys sealed",
    },
    "ru": {
        "audit_title": "Журнал аудита",
        "audit_explained": "Кто, что, когда, с каким объектом и в каком запросе сделал — но никогда сами данные. "
        "Каждый сервис ведёт свой журнал, и каждая запись сцеплена с предыдущей: если запись изменить, удалить или "
        "переставить, цепочка на этом месте рвётся.",
        "audit_trails": "Журналы", "audit_service_intake": "Дела (intake)",
        "audit_service_referrals": "Направления (referrals)", "audit_service_funds": "Помощь (funds)",
        "audit_service_gateway": "Входы и учётные записи (gateway)", "audit_break_glass": "Открытия без назначения",
        "audit_verification": "Проверка",
        "audit_verification_explained": "Цепочка каждого сервиса, проверенная только что: от первой записи до "
        "последней и по последней подписанной контрольной точке.",
        "audit_service": "Сервис", "audit_verdict": "Результат", "audit_kind_intact": "Цела",
        "audit_kind_broken": "Нарушена", "audit_kind_warning": "Не подтверждена", "audit_kind_unknown": "Не проверена",
        "audit_verdict_intact": "Каждая запись следует из предыдущей, и ничего из подписанного не пропало. Записей: "
        "{n}.",
        "audit_verdict_broken": "Первая испорченная запись — {id}, № {position} в цепочке: она не следует из "
        "предыдущей. Её изменили, или запись перед ней удалили или переставили.",
        "audit_verdict_truncated": "Записи следуют одна из другой, но записи, подписанные в контрольной точке, исчезли "
        "из конца цепочки. Записей: {n}.",
        "audit_verdict_diverged": "Записи следуют одна из другой, но записи, подписанной последней контрольной точкой, "
        "в цепочке нет: записи удалили и на их место записали другие. Записей: {n}.",
        "audit_verdict_forged": "Последняя контрольная точка подписана не ключом этого сервиса и ничего не "
        "подтверждает. Записей: {n}.",
        "audit_verdict_missing": "Записи следуют одна из другой, но подписанной контрольной точки нет, хотя ей давно "
        "пора быть: удаление записей из конца не было бы видно. Записей: {n}.",
        "audit_verdict_unavailable": "Записи следуют одна из другой, но подписанные контрольные точки прочитать не "
        "удалось (сервер сообщений не ответил): удаление записей из конца не проверено. Записей: {n}.",
        "audit_verdict_no_key": "Записи следуют одна из другой, но здесь нет ключа для проверки подписанных "
        "контрольных точек: удаление записей из конца не проверено. Записей: {n}.",
        "audit_verdict_not_vouched": "Цепочка не подтверждена. Записей: {n}.",
        "audit_verdict_unknown": "Сервис не ответил, или его ключи запечатаны. Попробуйте чуть позже.",
        "audit_filter_target": "Идентификатор объекта",
        "audit_filter_target_help": "Идентификатор дела, направления, гранта, запроса помощи, партнёра или учётной "
        "записи, например 0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f. Он отправляется в форме, а не в адресе страницы.",
        "audit_bad_target": "Это не идентификатор. В идентификаторе 36 знаков — буквы a–f, цифры и дефисы, — например "
        "0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f (у API-клиента — pc_ и 24 знака).",
        "audit_filter_action": "Действие", "audit_any_action": "Любое действие", "audit_filter_button": "Показать",
        "audit_filtered": "Показаны только записи:", "audit_filtered_target": "объект",
        "audit_filtered_action": "действие", "audit_show_all": "Показать все записи",
        "audit_newest_first": "Сначала новые. Время — UTC.", "audit_at": "Когда (UTC)", "audit_actor": "Кто",
        "audit_action": "Что", "audit_target": "Объект", "audit_request": "Идентификатор запроса",
        "audit_entry": "Запись", "audit_only_this_record": "Только этот объект",
        "audit_first_bad_here": "первая испорченная запись", "audit_no_entries": "Записей нет.",
        "audit_actor_system": "Система", "audit_actor_unknown": "Неизвестное имя пользователя",
        "audit_action_other": "Другое действие:",
        "audit_unread": "Журнал «{service}» прочитать не удалось: сервис не ответил. Попробуйте чуть позже.",
        "audit_bad_cursor": "Этой страницы журнала «{service}» больше нет; начните с его первой страницы.",
        "audit_break_glass_explained": "Каждый случай, когда кто-то открыл не назначенное ему дело, указав причину "
        "(принцип «нужно знать»): кто, какое дело, когда. Каждый запрос по указанной причине — отдельная запись, "
        "поэтому одно открытие может быть видно как несколько.",
        "audit_break_glass_reason": "Самой причины в журнале аудита нет: она хранится зашифрованной вместе с делом, и "
        "кураторы дела читают её в его истории.",
        "audit_case_id": "Идентификатор дела", "audit_case_entries": "Все записи об этом деле",
        "audit_no_openings": "Ни одно дело не открывали без назначения.",
        "audit_break_glass_elsewhere": "Здесь открытия дел (intake). Направления и помощь записывают свои: в их "
        "журналах выберите действие «{action}».",
        "audit.case.create": "Дело создано", "audit.case.read": "Просмотр дела",
        "audit.case.update": "Изменены данные дела", "audit.case.search": "Поиск по имени (имя не сохраняется)",
        "audit.case.duplicate-check": "Проверка на дубликаты (имя не сохраняется)",
        "audit.case.assign": "Назначены кураторы", "audit.case.close": "Дело закрыто",
        "audit.case.reopen": "Дело открыто снова", "audit.case.duplicate": "Дело отмечено как дубликат",
        "audit.case.erase": "Дело стёрто", "audit.case.break_glass": "Открыто без назначения (с причиной)",
        "audit.needs.add": "Добавлена потребность", "audit.needs.read": "Просмотр потребностей",
        "audit.needs.status": "Потребность изменена", "audit.consent.set": "Записано согласие",
        "audit.consent.read": "Просмотр согласия", "audit.timeline.read": "Просмотр истории",
        "audit.notes.add": "Добавлена заметка", "audit.notes.read": "Просмотр заметок",
        "audit.tasks.add": "Добавлена задача", "audit.tasks.read": "Просмотр задач",
        "audit.tasks.done": "Задача выполнена", "audit.document.add": "Добавлен документ",
        "audit.documents.read": "Просмотр списка документов", "audit.document.download": "Документ скачан",
        "audit.referral.create": "Направление отправлено", "audit.referral.read": "Просмотр направления",
        "audit.referral.cancel": "Направление отменено", "audit.referral.message.write": "Сообщение партнёру",
        "audit.referral.message.read": "Просмотр сообщений (куратор)",
        "audit.referral.packet.destroy": "Пакет направления уничтожен",
        "audit.partner.referral.read": "Просмотр направления партнёром",
        "audit.partner.referral.accept": "Принято партнёром", "audit.partner.referral.decline": "Отклонено партнёром",
        "audit.partner.referral.start": "Партнёр начал работу",
        "audit.partner.referral.complete": "Завершено партнёром",
        "audit.partner.referral.message.write": "Сообщение от партнёра",
        "audit.partner.referral.message.read": "Просмотр сообщений (партнёр)",
        "audit.partner.referral.denied": "Партнёру отказано: направление не ему",
        "audit.partner.create": "Партнёр добавлен", "audit.partner.update": "Изменены данные партнёра",
        "audit.partner.webhook.set": "Вебхук партнёра задан", "audit.partner.webhook.rotate": "Секрет вебхука заменён",
        "audit.partner.webhook.delete": "Вебхук партнёра удалён", "audit.grant.create": "Грант создан",
        "audit.disbursement.request": "Запрошена помощь", "audit.disbursement.read": "Просмотр запроса помощи",
        "audit.payee.read": "Показан получатель выплаты", "audit.disbursement.approve": "Помощь одобрена",
        "audit.disbursement.reject": "Помощь отклонена", "audit.disbursement.pay": "Помощь выплачена",
        "audit.disbursement.void": "Помощь аннулирована",
        "audit.case.shred": "Данные о помощи по делу уничтожены после стирания", "audit.signin.ok": "Вход",
        "audit.signin.failed": "Неудачный вход",
        "audit.signin.refused": "Вход отклонён: учётная запись отключена или ждёт одобрения",
        "audit.signin.throttled": "Вход задержан: слишком много попыток",
        "audit.user.locked": "Учётная запись заблокирована после неудачных входов",
        "audit.user.locked_everywhere": "Учётная запись заблокирована для всех адресов",
        "audit.user.unlock": "Учётная запись разблокирована", "audit.user.create": "Учётная запись создана",
        "audit.user.roles": "Роли изменены", "audit.user.disable": "Учётная запись отключена",
        "audit.user.enable": "Учётная запись включена", "audit.user.password": "Пароль изменён",
        "audit.mfa.enrolled": "Второй фактор настроен", "audit.mfa.reset": "Второй фактор сброшен",
        "audit.session.revoke": "Сеанс завершён", "audit.session.revoke_all": "Выход на всех устройствах",
        "audit.session.refresh_reused": "Сеанс завершён: токен обновления использован повторно",
        "audit.client.create": "API-клиент создан", "audit.client.revoke": "API-клиент отозван",
        "audit.approval.request": "Запрошено одобрение", "audit.approval.approve": "Запрос одобрен",
        "audit.approval.reject": "Запрос отклонён", "audit.keys.sealed": "Ключи запечатаны",
    },
    "be": {
        "audit_title": "Журнал аўдыту",
        "audit_explained": "Хто, што, калі, з якім аб'ектам і ў якім запыце зрабіў — але ніколі самі звесткі. Кожны "
        "сэрвіс вядзе свой журнал, і кожны запіс счэплены з папярэднім: калі запіс змяніць, выдаліць або пераставіць, "
        "ланцужок у гэтым месцы рвецца.",
        "audit_trails": "Журналы", "audit_service_intake": "Справы (intake)",
        "audit_service_referrals": "Накіраванні (referrals)", "audit_service_funds": "Дапамога (funds)",
        "audit_service_gateway": "Уваходы і ўліковыя запісы (gateway)", "audit_break_glass": "Адкрыцці без прызначэння",
        "audit_verification": "Праверка",
        "audit_verification_explained": "Ланцужок кожнага сэрвісу, правераны толькі што: ад першага запісу да апошняга "
        "і па апошняй падпісанай кантрольнай кропцы.",
        "audit_service": "Сэрвіс", "audit_verdict": "Вынік", "audit_kind_intact": "Цэлы",
        "audit_kind_broken": "Парушаны", "audit_kind_warning": "Не пацверджаны", "audit_kind_unknown": "Не правераны",
        "audit_verdict_intact": "Кожны запіс вынікае з папярэдняга, і нічога з падпісанага не знікла. Запісаў: {n}.",
        "audit_verdict_broken": "Першы сапсаваны запіс — {id}, № {position} у ланцужку: ён не вынікае з папярэдняга. "
        "Яго змянілі, або запіс перад ім выдалілі ці пераставілі.",
        "audit_verdict_truncated": "Запісы вынікаюць адзін з аднаго, але запісы, падпісаныя ў кантрольнай кропцы, "
        "зніклі з канца ланцужка. Запісаў: {n}.",
        "audit_verdict_diverged": "Запісы вынікаюць адзін з аднаго, але запісу, падпісанага апошняй кантрольнай "
        "кропкай, у ланцужку няма: запісы выдалілі і на іх месца запісалі іншыя. Запісаў: {n}.",
        "audit_verdict_forged": "Апошняя кантрольная кропка падпісана не ключом гэтага сэрвісу і нічога не пацвярджае. "
        "Запісаў: {n}.",
        "audit_verdict_missing": "Запісы вынікаюць адзін з аднаго, але падпісанай кантрольнай кропкі няма, хоць ёй "
        "даўно пара быць: выдаленне запісаў з канца не было б відаць. Запісаў: {n}.",
        "audit_verdict_unavailable": "Запісы вынікаюць адзін з аднаго, але падпісаныя кантрольныя кропкі прачытаць не "
        "ўдалося (сервер паведамленняў не адказаў): выдаленне запісаў з канца не праверана. Запісаў: {n}.",
        "audit_verdict_no_key": "Запісы вынікаюць адзін з аднаго, але тут няма ключа для праверкі падпісаных "
        "кантрольных кропак: выдаленне запісаў з канца не праверана. Запісаў: {n}.",
        "audit_verdict_not_vouched": "Ланцужок не пацверджаны. Запісаў: {n}.",
        "audit_verdict_unknown": "Сэрвіс не адказаў, або яго ключы запячатаныя. Паспрабуйце крыху пазней.",
        "audit_filter_target": "Ідэнтыфікатар аб'екта",
        "audit_filter_target_help": "Ідэнтыфікатар справы, накіравання, гранта, запыту дапамогі, партнёра або "
        "ўліковага запісу, напрыклад 0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f. Ён адпраўляецца ў форме, а не ў адрасе "
        "старонкі.",
        "audit_bad_target": "Гэта не ідэнтыфікатар. У ідэнтыфікатары 36 знакаў — літары a–f, лічбы і злучкі, — "
        "напрыклад 0b6c2f3e-5d1a-4c8e-9f27-3a4b5c6d7e8f (у API-кліента — pc_ і 24 знакі).",
        "audit_filter_action": "Дзеянне", "audit_any_action": "Любое дзеянне", "audit_filter_button": "Паказаць",
        "audit_filtered": "Паказаны толькі запісы:", "audit_filtered_target": "аб'ект",
        "audit_filtered_action": "дзеянне", "audit_show_all": "Паказаць усе запісы",
        "audit_newest_first": "Спачатку новыя. Час — UTC.", "audit_at": "Калі (UTC)", "audit_actor": "Хто",
        "audit_action": "Што", "audit_target": "Аб'ект", "audit_request": "Ідэнтыфікатар запыту",
        "audit_entry": "Запіс", "audit_only_this_record": "Толькі гэты аб'ект",
        "audit_first_bad_here": "першы сапсаваны запіс", "audit_no_entries": "Запісаў няма.",
        "audit_actor_system": "Сістэма", "audit_actor_unknown": "Невядомае імя карыстальніка",
        "audit_action_other": "Іншае дзеянне:",
        "audit_unread": "Журнал «{service}» прачытаць не ўдалося: сэрвіс не адказаў. Паспрабуйце крыху пазней.",
        "audit_bad_cursor": "Гэтай старонкі журнала «{service}» больш няма; пачніце з яго першай старонкі.",
        "audit_break_glass_explained": "Кожны выпадак, калі нехта адкрыў не прызначаную яму справу, указаўшы прычыну "
        "(прынцып «трэба ведаць»): хто, якую справу, калі. Кожны запыт па ўказанай прычыне — асобны запіс, таму адно "
        "адкрыццё можа быць відаць як некалькі.",
        "audit_break_glass_reason": "Самой прычыны ў журнале аўдыту няма: яна захоўваецца зашыфраванай разам са "
        "справай, і куратары справы чытаюць яе ў яе гісторыі.",
        "audit_case_id": "Ідэнтыфікатар справы", "audit_case_entries": "Усе запісы пра гэтую справу",
        "audit_no_openings": "Ніводную справу не адкрывалі без прызначэння.",
        "audit_break_glass_elsewhere": "Тут адкрыцці спраў (intake). Накіраванні і дапамога запісваюць свае: у іх "
        "журналах выберыце дзеянне «{action}».",
        "audit.case.create": "Справа створана", "audit.case.read": "Прагляд справы",
        "audit.case.update": "Зменены звесткі справы", "audit.case.search": "Пошук па імені (імя не захоўваецца)",
        "audit.case.duplicate-check": "Праверка на дублікаты (імя не захоўваецца)",
        "audit.case.assign": "Прызначаны куратары", "audit.case.close": "Справа закрыта",
        "audit.case.reopen": "Справа адкрыта зноў", "audit.case.duplicate": "Справа пазначана як дублікат",
        "audit.case.erase": "Справа сцёрта", "audit.case.break_glass": "Адкрыта без прызначэння (з прычынай)",
        "audit.needs.add": "Дададзена патрэба", "audit.needs.read": "Прагляд патрэб",
        "audit.needs.status": "Патрэба зменена", "audit.consent.set": "Запісана згода",
        "audit.consent.read": "Прагляд згоды", "audit.timeline.read": "Прагляд гісторыі",
        "audit.notes.add": "Дададзена нататка", "audit.notes.read": "Прагляд нататак",
        "audit.tasks.add": "Дададзена задача", "audit.tasks.read": "Прагляд задач",
        "audit.tasks.done": "Задача выканана", "audit.document.add": "Дададзены дакумент",
        "audit.documents.read": "Прагляд спіса дакументаў", "audit.document.download": "Дакумент спампаваны",
        "audit.referral.create": "Накіраванне адпраўлена", "audit.referral.read": "Прагляд накіравання",
        "audit.referral.cancel": "Накіраванне скасавана", "audit.referral.message.write": "Паведамленне партнёру",
        "audit.referral.message.read": "Прагляд паведамленняў (куратар)",
        "audit.referral.packet.destroy": "Пакет накіравання знішчаны",
        "audit.partner.referral.read": "Прагляд накіравання партнёрам",
        "audit.partner.referral.accept": "Прынята партнёрам", "audit.partner.referral.decline": "Адхілена партнёрам",
        "audit.partner.referral.start": "Партнёр пачаў працу", "audit.partner.referral.complete": "Завершана партнёрам",
        "audit.partner.referral.message.write": "Паведамленне ад партнёра",
        "audit.partner.referral.message.read": "Прагляд паведамленняў (партнёр)",
        "audit.partner.referral.denied": "Партнёру адмоўлена: накіраванне не яму",
        "audit.partner.create": "Партнёр дададзены", "audit.partner.update": "Зменены звесткі партнёра",
        "audit.partner.webhook.set": "Вэбхук партнёра зададзены",
        "audit.partner.webhook.rotate": "Сакрэт вэбхука заменены",
        "audit.partner.webhook.delete": "Вэбхук партнёра выдалены", "audit.grant.create": "Грант створаны",
        "audit.disbursement.request": "Запытана дапамога", "audit.disbursement.read": "Прагляд запыту дапамогі",
        "audit.payee.read": "Паказаны атрымальнік выплаты", "audit.disbursement.approve": "Дапамога ўхвалена",
        "audit.disbursement.reject": "Дапамога адхілена", "audit.disbursement.pay": "Дапамога выплачана",
        "audit.disbursement.void": "Дапамога анулявана",
        "audit.case.shred": "Звесткі пра дапамогу па справе знішчаны пасля сцірання", "audit.signin.ok": "Уваход",
        "audit.signin.failed": "Няўдалы ўваход",
        "audit.signin.refused": "Уваход адхілены: уліковы запіс адключаны або чакае ўхвалення",
        "audit.signin.throttled": "Уваход затрыманы: занадта шмат спроб",
        "audit.user.locked": "Уліковы запіс заблакаваны пасля няўдалых уваходаў",
        "audit.user.locked_everywhere": "Уліковы запіс заблакаваны для ўсіх адрасоў",
        "audit.user.unlock": "Уліковы запіс разблакаваны", "audit.user.create": "Уліковы запіс створаны",
        "audit.user.roles": "Ролі зменены", "audit.user.disable": "Уліковы запіс адключаны",
        "audit.user.enable": "Уліковы запіс уключаны", "audit.user.password": "Пароль зменены",
        "audit.mfa.enrolled": "Другі фактар наладжаны", "audit.mfa.reset": "Другі фактар скінуты",
        "audit.session.revoke": "Сеанс завершаны", "audit.session.revoke_all": "Выхад на ўсіх прыладах",
        "audit.session.refresh_reused": "Сеанс завершаны: токен абнаўлення выкарыстаны паўторна",
        "audit.client.create": "API-кліент створаны", "audit.client.revoke": "API-кліент адкліканы",
        "audit.approval.request": "Запытана ўхваленне", "audit.approval.approve": "Запыт ухвалены",
        "audit.approval.reject": "Запыт адхілены", "audit.keys.sealed": "Ключы запячатаныя",
    },
}
for _language, _words in _AUDIT_MESSAGES.items():
    MESSAGES[_language].update(_words)


# The admin's partner API clients and system status, and the coordinator's page until the programme report lands
# (issue #19), in a block of their own merged into MESSAGES. `{…}` fields are filled by the page (str.format).
_ADMIN2_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "pclients_title": "API clients",
        "pclients_explained": "A partner's own system takes its referrals through the API with a client id and a "
        "secret. Each client is one such system; revoke a client that is lost or no longer used.",
        "pclients_name": "Name", "pclients_id": "Client id", "pclients_created": "Issued",
        "pclients_state": "State", "pclients_active": "In use", "pclients_revoked": "Revoked",
        "pclients_waiting": "Waiting for another admin's approval",
        "pclients_none": "This partner has no API client.",
        "pclients_issue": "Issue a client",
        "pclients_name_help": "Which system it is for, e.g. “Clinic case system”.",
        "pclients_secret": "Secret", "pclients_secret_title": "The client's secret: copy it now",
        "pclients_secret_explained": "Give the client id and this secret to the partner by a safe channel. It is "
        "shown this once: it is kept only as a hash and nobody can show it again. If it is lost, issue a new client "
        "and revoke this one.",
        "pclients_secret_pending": "Another admin must approve this client before it can get a token.",
        "pclients_issued": "The API client is issued.",
        "pclients_revoke": "Revoke",
        "pclients_revoke_title": "Revoke this API client?",
        "pclients_revoke_explained": "The partner's system that uses it can no longer get a token, and the tokens it "
        "holds stop working at once. This cannot be undone: a new client gets a new id and secret.",
        "pclients_revoke_confirm": "Yes, revoke it",
        "pclients_done_revoked": "The API client is revoked.",
        "pclients_invalid_name": "Give the client a name (at most 200 characters).",
        "pclients_refused_no_client": "This partner has no such API client.",
        "admin2_status_nav": "System status",
        "status_title": "System status",
        "status_explained": "Every part of the system as it answered just now; reload the page to ask again.",
        "status_part": "Part", "status_state": "State", "status_database": "Database",
        "status_migrations": "Database structure", "status_nats": "Message server (NATS)", "status_keys": "Keys",
        "status_part_gateway": "Gateway (sign-in and accounts)", "status_part_intake": "Cases (intake)",
        "status_part_referrals": "Referrals", "status_part_funds": "Aid (funds)",
        "status_ready": "Ready", "status_not_ready": "Not ready", "status_unreachable": "Not answering",
        "status_value_ok": "answers", "status_value_unreachable": "not answering",
        "status_value_current": "up to date", "status_value_behind": "behind (migrations not applied)",
        "status_value_connected": "connected", "status_value_disconnected": "disconnected",
        "status_value_connecting": "connecting", "status_value_sealed": "sealed", "status_value_unsealed": "open",
        "status_not_reported": "not reported",
        "status_detail_timeout": "no answer in time", "status_detail_no_connection": "no connection",
        "status_all_ready": "Every part of the system is ready.",
        "status_some_not_ready": "Not every part is ready: {parts}.",
        "status_custody": "Key custody",
        "status_custody_file": "In plain files beside the data (`file`): for development only.",
        "status_custody_sealed": "Sealed under an unseal passphrase (`sealed`).",
        "status_custody_openbao": "In OpenBao, under a Transit key (`openbao`).",
        "status_keys_sealed": "The keys are sealed now: nothing that needs a key works until `rehab unseal`.",
        "status_keys_open": "The keys are open (not sealed).",
        "programme_nav": "Programme",
        "programme_title": "Programme report",
        "programme_coming": "The programme report is being built and will appear on this page.",
        "programme_will_show": "For the whole programme, it will show:",
        "programme_needs": "how many people were helped, by need (medical, legal, housing and the others);",
        "programme_outcomes": "the outcomes of needs and referrals;",
        "programme_first_help": "how long it took from a case's opening to the first help;",
        "programme_money": "the money paid, by category and by month.",
        "programme_small_cells": "A number smaller than five is never shown (small cells are suppressed), so that "
        "nobody can be recognised from the report.",
    },
    "ru": {
        "pclients_title": "API-клиенты",
        "pclients_explained": "Собственная система партнёра получает направления через API по идентификатору "
        "клиента и секрету. Каждый клиент — одна такая система; отзовите клиента, который утерян или больше не "
        "используется.",
        "pclients_name": "Название", "pclients_id": "Идентификатор клиента", "pclients_created": "Выдан",
        "pclients_state": "Состояние", "pclients_active": "Действует", "pclients_revoked": "Отозван",
        "pclients_waiting": "Ждёт одобрения другого администратора",
        "pclients_none": "У этого партнёра нет API-клиентов.",
        "pclients_issue": "Выдать клиента",
        "pclients_name_help": "Для какой системы он, например «Система учёта клиники».",
        "pclients_secret": "Секрет", "pclients_secret_title": "Секрет клиента: скопируйте его сейчас",
        "pclients_secret_explained": "Передайте партнёру идентификатор клиента и этот секрет по надёжному каналу. "
        "Он показан один раз: хранится только его хеш, и никто не сможет показать его снова. Если он утерян, "
        "выдайте нового клиента и отзовите этого.",
        "pclients_secret_pending": "Прежде чем клиент сможет получить токен, его должен одобрить другой "
        "администратор.",
        "pclients_issued": "API-клиент выдан.",
        "pclients_revoke": "Отозвать",
        "pclients_revoke_title": "Отозвать этого API-клиента?",
        "pclients_revoke_explained": "Система партнёра, которая его использует, больше не сможет получить токен, а "
        "уже выданные токены сразу перестанут работать. Это нельзя отменить: новый клиент получит новый "
        "идентификатор и секрет.",
        "pclients_revoke_confirm": "Да, отозвать",
        "pclients_done_revoked": "API-клиент отозван.",
        "pclients_invalid_name": "Дайте клиенту название (не больше 200 знаков).",
        "pclients_refused_no_client": "У этого партнёра нет такого API-клиента.",
        "admin2_status_nav": "Состояние системы",
        "status_title": "Состояние системы",
        "status_explained": "Каждая часть системы, как она ответила только что; обновите страницу, чтобы спросить "
        "снова.",
        "status_part": "Часть", "status_state": "Состояние", "status_database": "База данных",
        "status_migrations": "Структура базы данных", "status_nats": "Сервер сообщений (NATS)", "status_keys": "Ключи",
        "status_part_gateway": "Шлюз (вход и учётные записи)", "status_part_intake": "Дела (intake)",
        "status_part_referrals": "Направления", "status_part_funds": "Помощь (funds)",
        "status_ready": "Готов", "status_not_ready": "Не готов", "status_unreachable": "Не отвечает",
        "status_value_ok": "отвечает", "status_value_unreachable": "не отвечает",
        "status_value_current": "актуальна", "status_value_behind": "отстаёт (миграции не применены)",
        "status_value_connected": "подключён", "status_value_disconnected": "отключён",
        "status_value_connecting": "подключается", "status_value_sealed": "запечатаны",
        "status_value_unsealed": "открыты",
        "status_not_reported": "не сообщается",
        "status_detail_timeout": "нет ответа вовремя", "status_detail_no_connection": "нет соединения",
        "status_all_ready": "Все части системы готовы.",
        "status_some_not_ready": "Готовы не все части: {parts}.",
        "status_custody": "Хранение ключей",
        "status_custody_file": "В обычных файлах рядом с данными (`file`): только для разработки.",
        "status_custody_sealed": "Запечатаны под парольной фразой (`sealed`).",
        "status_custody_openbao": "В OpenBao, под ключом Transit (`openbao`).",
        "status_keys_sealed": "Ключи сейчас запечатаны: ничто, для чего нужен ключ, не работает до `rehab unseal`.",
        "status_keys_open": "Ключи открыты (не запечатаны).",
        "programme_nav": "Программа",
        "programme_title": "Отчёт по программе",
        "programme_coming": "Отчёт по программе сейчас готовится и появится на этой странице.",
        "programme_will_show": "По всей программе он покажет:",
        "programme_needs": "скольким людям помогли, по видам нужд (медицинская, юридическая, жильё и другие);",
        "programme_outcomes": "чем закончились нужды и направления;",
        "programme_first_help": "сколько времени прошло от открытия дела до первой помощи;",
        "programme_money": "выплаченные деньги по категориям и по месяцам.",
        "programme_small_cells": "Число меньше пяти никогда не показывается (малые ячейки скрыты), чтобы по отчёту "
        "никого нельзя было узнать.",
    },
    "be": {
        "pclients_title": "API-кліенты",
        "pclients_explained": "Уласная сістэма партнёра атрымлівае накіраванні праз API па ідэнтыфікатары кліента "
        "і сакрэце. Кожны кліент — адна такая сістэма; адклічце кліента, які згублены або больш не "
        "выкарыстоўваецца.",
        "pclients_name": "Назва", "pclients_id": "Ідэнтыфікатар кліента", "pclients_created": "Выдадзены",
        "pclients_state": "Стан", "pclients_active": "Дзейнічае", "pclients_revoked": "Адкліканы",
        "pclients_waiting": "Чакае ўхвалення іншага адміністратара",
        "pclients_none": "У гэтага партнёра няма API-кліентаў.",
        "pclients_issue": "Выдаць кліента",
        "pclients_name_help": "Для якой сістэмы ён, напрыклад «Сістэма ўліку клінікі».",
        "pclients_secret": "Сакрэт", "pclients_secret_title": "Сакрэт кліента: скапіруйце яго зараз",
        "pclients_secret_explained": "Перадайце партнёру ідэнтыфікатар кліента і гэты сакрэт надзейным каналам. Ён "
        "паказаны адзін раз: захоўваецца толькі яго хэш, і ніхто не зможа паказаць яго зноў. Калі ён згублены, "
        "выдайце новага кліента і адклічце гэтага.",
        "pclients_secret_pending": "Перш чым кліент зможа атрымаць токен, яго павінен ухваліць іншы адміністратар.",
        "pclients_issued": "API-кліент выдадзены.",
        "pclients_revoke": "Адклікаць",
        "pclients_revoke_title": "Адклікаць гэтага API-кліента?",
        "pclients_revoke_explained": "Сістэма партнёра, якая яго выкарыстоўвае, больш не зможа атрымаць токен, а ўжо "
        "выдадзеныя токены адразу перастануць працаваць. Гэта нельга адмяніць: новы кліент атрымае новы "
        "ідэнтыфікатар і сакрэт.",
        "pclients_revoke_confirm": "Так, адклікаць",
        "pclients_done_revoked": "API-кліент адкліканы.",
        "pclients_invalid_name": "Дайце кліенту назву (не больш за 200 знакаў).",
        "pclients_refused_no_client": "У гэтага партнёра няма такога API-кліента.",
        "admin2_status_nav": "Стан сістэмы",
        "status_title": "Стан сістэмы",
        "status_explained": "Кожная частка сістэмы, як яна адказала толькі што; абнавіце старонку, каб спытаць "
        "зноў.",
        "status_part": "Частка", "status_state": "Стан", "status_database": "База даных",
        "status_migrations": "Структура базы даных", "status_nats": "Сервер паведамленняў (NATS)",
        "status_keys": "Ключы",
        "status_part_gateway": "Шлюз (уваход і ўліковыя запісы)", "status_part_intake": "Справы (intake)",
        "status_part_referrals": "Накіраванні", "status_part_funds": "Дапамога (funds)",
        "status_ready": "Гатовы", "status_not_ready": "Не гатовы", "status_unreachable": "Не адказвае",
        "status_value_ok": "адказвае", "status_value_unreachable": "не адказвае",
        "status_value_current": "актуальная", "status_value_behind": "адстае (міграцыі не ўжытыя)",
        "status_value_connected": "падлучаны", "status_value_disconnected": "адлучаны",
        "status_value_connecting": "падлучаецца", "status_value_sealed": "запячатаныя",
        "status_value_unsealed": "адкрытыя",
        "status_not_reported": "не паведамляецца",
        "status_detail_timeout": "няма адказу ў час", "status_detail_no_connection": "няма злучэння",
        "status_all_ready": "Усе часткі сістэмы гатовыя.",
        "status_some_not_ready": "Гатовыя не ўсе часткі: {parts}.",
        "status_custody": "Захоўванне ключоў",
        "status_custody_file": "У звычайных файлах побач з данымі (`file`): толькі для распрацоўкі.",
        "status_custody_sealed": "Запячатаныя пад парольнай фразай (`sealed`).",
        "status_custody_openbao": "У OpenBao, пад ключом Transit (`openbao`).",
        "status_keys_sealed": "Ключы зараз запячатаныя: нічога, для чаго патрэбны ключ, не працуе да "
        "`rehab unseal`.",
        "status_keys_open": "Ключы адкрытыя (не запячатаныя).",
        "programme_nav": "Праграма",
        "programme_title": "Справаздача па праграме",
        "programme_coming": "Справаздача па праграме зараз рыхтуецца і з'явіцца на гэтай старонцы.",
        "programme_will_show": "Па ўсёй праграме яна пакажа:",
        "programme_needs": "колькім людзям дапамаглі, па відах патрэб (медыцынская, юрыдычная, жыллё і іншыя);",
        "programme_outcomes": "чым скончыліся патрэбы і накіраванні;",
        "programme_first_help": "колькі часу прайшло ад адкрыцця справы да першай дапамогі;",
        "programme_money": "выплачаныя грошы па катэгорыях і па месяцах.",
        "programme_small_cells": "Лік меншы за пяць ніколі не паказваецца (малыя ячэйкі схаваныя), каб па "
        "справаздачы нікога нельга было пазнаць.",
    },
}
for _language, _words in _ADMIN2_MESSAGES.items():
    MESSAGES[_language].update(_words)


_NBSP = "\u00a0"


def chosen(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT


def negotiated(header: str | None, offered: tuple[str, ...] = LANGUAGES) -> str:
    """The best of `offered` for an `Accept-Language` header (RFC 9110 §12.5.4): the languages by their q-value,
    highest first (in the header's order where equal), `q=0` never; a tag counts for its language (`be-BY` → be,
    `ru-RU` → ru). `*` or nothing offered that is asked for: English."""
    asked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:1000].split(",")):
        tag, _, parameters = part.strip().partition(";")
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        language = tag.strip().lower().split("-", 1)[0]
        if language and 0 < q <= 1:
            asked.append((-q, position, language))
    for _, _, language in sorted(asked):
        if language in offered:
            return language
    return DEFAULT


def translator(language: str):
    messages = MESSAGES[chosen(language)]
    return lambda key: messages.get(key, MESSAGES[DEFAULT].get(key, key))


# A date as each locale writes it, numerically where CLDR's short date is (ru, pl and lt's short dates; be writes as ru
# does, its own short "3.12.26" cutting the year), en as British English's medium date ("3 Dec 2026"); times 24-hour.
DATE_PATTERNS = {"be": "dd.MM.y", "ru": "dd.MM.y", "en": "d MMM y", "pl": "d.MM.y", "lt": "y-MM-dd"}
TIME_PATTERN = "HH:mm"


def format_date(value: date | datetime | str | None, language: str) -> str:
    """A date ("03.12.2026", "3 Dec 2026") or a moment, on the clock of the offset it carries ("3.12.2026, 14:05"),
    joined as CLDR joins a short date and time in that locale; text that is not an ISO date comes back as it is."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    language = chosen(language)
    day = value.date() if isinstance(value, datetime) else value
    text = babel_dates.format_date(day, DATE_PATTERNS[language], locale=language)
    if not isinstance(value, datetime):
        return text
    shown = babel_dates.format_time(value.time().replace(tzinfo=None), TIME_PATTERN, locale=language)
    return str(Locale.parse(language).datetime_formats["short"]).format(shown, text)


# The currencies grants are kept in (services/funds/money.py keeps its own list: the gateway imports no service);
# each one's decimals are ISO 4217's minor units as CLDR has them (JPY none, KWD and BHD three, the others two).
CURRENCIES = ("BHD", "BYN", "CHF", "CZK", "EUR", "GBP", "GEL", "JPY", "KWD", "PLN", "SEK", "UAH", "USD")
# Where a locale's CLDR sign is not the one people there write: the Belarusian rouble is «Br» in Russian too
# (CLDR gives it in be; in ru it gives the code).
_SYMBOL_OVERRIDES = {("ru", "BYN"): "Br"}
# CLDR's minimumGroupingDigits where it is 2 (Babel does not apply it): a four-digit amount stays whole.
_MIN_GROUPING_TWO = {"pl"}


def minor_digits(currency: str) -> int:
    """How many decimals an amount of this currency is written with (CLDR: JPY 0, KWD 3, any other 2 by default)."""
    return babel_numbers.get_currency_precision(currency)


def format_money(amount: str | Decimal | None, currency: str, language: str) -> str:
    """An amount with its currency's own number of decimals, grouped and signed as the locale writes it ("150,000
    JPY" has none, "1,234.500 KWD" three); never through a float."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"
    if not value.is_finite():
        return f"{amount} {currency}"
    language = chosen(language)
    pattern = None
    if language in _MIN_GROUPING_TWO and abs(value) < 10000:
        pattern = Locale.parse(language).currency_formats["standard"].pattern.replace("#,##", "#")
    text = babel_numbers.format_currency(value, currency, pattern, locale=language)
    symbol = babel_numbers.get_currency_symbol(currency, locale=language)
    override = _SYMBOL_OVERRIDES.get((language, currency))
    if override and override != symbol:
        text, symbol = text.replace(symbol, override), override
    if symbol[-1:].isalpha() and symbol in text:
        # CLDR's currency spacing, which Babel leaves out: a sign ending in a letter is kept off the digits
        # ("BYN 10.00", not "BYN10.00").
        head, _, tail = text.partition(symbol)
        if tail[:1].isdigit():
            text = f"{head}{symbol}{_NBSP}{tail}"
    return text


def format_size(size: int, language: str) -> str:
    """A file's size as people read it: "340 KB", "1.5 MB" ("1,5 МБ" in be/ru)."""
    language = chosen(language)
    if size >= 1024 * 1024:
        number = babel_numbers.format_decimal(Decimal(size) / Decimal(1024 * 1024), "#,##0.0", locale=language)
        key = "size_mb"
    else:
        number = babel_numbers.format_decimal(math.ceil(size / 1024), locale=language)
        key = "size_kb"
    return translator(language)(key).format(n=number)


# --- the partner console (partner.py, issue #18), in five languages ------------------------------------------------
#
# Partners sit in Lithuania and Poland: their console is also in Polish and Lithuanian, and so are the pages every
# person passes through before it (sign-in, the second factor). A staff page chosen in pl or lt shows English for the
# words it lacks (`translator`).

_PARTNER_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "partner_inbox": "Referrals to your organisation",
        "partner_inbox_explained": "Referrals that caseworkers have sent to your organisation, newest first in each "
        "group. Open one to read what the caseworker wrote for you, answer it, and write to the caseworker.",
        "partner_jump": "Groups", "partner_group_sent": "Waiting for your answer",
        "partner_group_accepted": "Accepted, not started yet", "partner_group_in_progress": "In progress",
        "partner_group_closed": "Closed", "partner_group_closed_note": "Showing the most recently closed: {n}.",
        "partner_group_none": "None.", "partner_more_exist": "This group holds more referrals than the page shows.",
        "partner_status_sent": "New", "partner_status_accepted": "Accepted", "partner_status_in_progress":
        "In progress", "partner_status_completed": "Completed", "partner_status_declined": "Declined",
        "partner_status_cancelled": "Cancelled",
        "partner_col_person": "Person", "partner_col_received": "Received", "partner_col_need": "Need",
        "partner_col_language": "Language", "partner_col_status": "Status", "partner_col_messages": "Messages",
        "partner_overdue": "Overdue",
        "partner_overdue_rule": "a referral not answered within {sent} of being sent, or not started within "
        "{accepted} of being accepted.",
        "partner_unread": "New messages: {n}", "partner_hidden": "(no longer shown)",
        "partner_none_given": "not given",
        "partner_cat_medical": "Medical care", "partner_cat_psychological": "Psychological support",
        "partner_cat_relocation": "Relocation", "partner_cat_legal": "Legal aid", "partner_cat_housing": "Housing",
        "partner_cat_employment": "Employment", "partner_cat_financial": "Financial aid",
        "partner_lang_be": "Belarusian", "partner_lang_ru": "Russian", "partner_lang_uk": "Ukrainian",
        "partner_lang_pl": "Polish", "partner_lang_lt": "Lithuanian", "partner_lang_en": "English",
        "partner_referral": "Referral", "partner_back": "All referrals",
        "partner_sent_at": "Sent to you", "partner_changed_at": "Status since",
        "partner_times_utc": "Times are in UTC.",
        "partner_packet": "What the caseworker wrote for you",
        "partner_packet_explained": "Shared with the person's consent, for this referral only. Keep it only where "
        "your work needs it.",
        "partner_display_name": "Name", "partner_language": "Language", "partner_note": "Note",
        "partner_contact": "How to reach the person", "partner_health": "Health summary",
        "partner_packet_gone": "The person's consent no longer covers sharing this with you, or their case was "
        "erased: what the caseworker wrote is no longer shown, and the messages are gone. You can still finish the "
        "referral.",
        "partner_actions": "Your answer",
        "partner_accept": "Accept", "partner_decline": "Decline", "partner_start": "Start",
        "partner_complete": "Complete",
        "partner_accept_help": "You take the referral on; the caseworker sees it at once.",
        "partner_decline_reason": "Reason for declining",
        "partner_decline_help": "The caseworker reads this. Write nothing about the person that is not needed.",
        "partner_start_help": "The work with the person has begun.",
        "partner_outcome": "Outcome",
        "partner_outcome_help": "What was done, and what the person may still need. The caseworker reads this.",
        "partner_cost": "Cost estimate (optional)", "partner_amount": "Amount", "partner_currency": "Currency",
        "partner_cost_help": "What the work cost or will cost, for the caseworker's finance colleagues, e.g. "
        "{example}.",
        "partner_rule_accept": "You can accept only a referral that is waiting for your answer.",
        "partner_rule_decline": "You can decline only before accepting. If you cannot go on after accepting, write "
        "to the caseworker: only they can cancel the referral.",
        "partner_rule_start": "You can start only after accepting.",
        "partner_rule_complete": "You can complete only after starting.",
        "partner_closed": "This referral is closed: nothing more can be done with it.",
        "partner_done_accept": "You accepted the referral. Press “Start” when the work with the person begins.",
        "partner_done_decline": "You declined the referral; the caseworker sees it on the case.",
        "partner_done_start": "Started: the referral is in progress.",
        "partner_done_complete": "Completed. The caseworker sees the outcome.",
        "partner_done_message": "Your message was sent.",
        "partner_messages": "Messages with the caseworker", "partner_messages_none": "No messages yet.",
        "partner_from_caseworker": "Caseworker", "partner_from_partner": "Your organisation", "partner_new": "new",
        "partner_message_text": "Your message",
        "partner_message_help": "Only the person's caseworkers read it. Write what the work needs, and no more.",
        "partner_send": "Send",
        "partner_messages_closed": "This referral closed more than {days} days ago: its messages can still be "
        "read, but no new one can be written.",
        "partner_refused_transition": "Not done: the referral's status is now “{status}”.",
        "partner_not_found_title": "No such referral",
        "partner_not_found": "No such referral is addressed to your organisation.",
        "partner_refused_reason": "Write why you decline (at most 2,000 characters).",
        "partner_refused_outcome": "Write the outcome (at most 4,000 characters).",
        "partner_refused_amount": "Write the cost as an amount of money, e.g. {example}, or leave it empty.",
        "partner_refused_text": "Write a message (at most 10,000 characters).",
        "partner_refused_packet_withdrawn": "No message can be written: the person's consent no longer covers this "
        "referral, and its messages were deleted.",
        "partner_refused_unavailable": "The referrals service is not available right now; try again in a moment. "
        "Nothing was changed.",
        "partner_refused_sealed": "The system is sealed: nothing can be read or changed until it is opened again.",
        "partner_refused_busy": "Too many requests at once; wait a moment and try again.",
        "partner_refused_forbidden": "Your account may not do this.",
        "partner_refused_other": "The system refused this (error {status}). Nothing was changed.",
        # The admin's form for a new account: a partner's staff member bound to a partner chosen by name.
        "admin_partner": "Partner (partner's staff only)", "admin_partner_none": "None",
        "admin_partner_help": "The organisation a partner's staff member works for; leave “None” for everyone else.",
    },
    "ru": {
        "partner_inbox": "Направления в вашу организацию",
        "partner_inbox_explained": "Направления, которые кураторы отправили в вашу организацию; в каждой группе "
        "сначала новые. Откройте направление, чтобы прочитать, что написал вам куратор, ответить на него и написать "
        "куратору.",
        "partner_jump": "Группы", "partner_group_sent": "Ждут вашего ответа",
        "partner_group_accepted": "Приняты, работа не начата", "partner_group_in_progress": "В работе",
        "partner_group_closed": "Закрытые", "partner_group_closed_note": "Показаны последние закрытые: {n}.",
        "partner_group_none": "Нет.", "partner_more_exist": "В этой группе больше направлений, чем показано.",
        "partner_status_sent": "Новое", "partner_status_accepted": "Принято", "partner_status_in_progress":
        "В работе", "partner_status_completed": "Завершено", "partner_status_declined": "Отклонено",
        "partner_status_cancelled": "Отменено",
        "partner_col_person": "Человек", "partner_col_received": "Получено", "partner_col_need": "Потребность",
        "partner_col_language": "Язык", "partner_col_status": "Статус", "partner_col_messages": "Сообщения",
        "partner_overdue": "Просрочено",
        "partner_overdue_rule": "направление, на которое нет ответа через {sent} после отправки или работа по "
        "которому не началась через {accepted} после принятия.",
        "partner_unread": "Новых сообщений: {n}", "partner_hidden": "(больше не показывается)",
        "partner_none_given": "не указано",
        "partner_cat_medical": "Медицинская помощь", "partner_cat_psychological": "Психологическая помощь",
        "partner_cat_relocation": "Переезд", "partner_cat_legal": "Юридическая помощь", "partner_cat_housing":
        "Жильё", "partner_cat_employment": "Работа", "partner_cat_financial": "Финансовая помощь",
        "partner_lang_be": "белорусский", "partner_lang_ru": "русский", "partner_lang_uk": "украинский",
        "partner_lang_pl": "польский", "partner_lang_lt": "литовский", "partner_lang_en": "английский",
        "partner_referral": "Направление", "partner_back": "Все направления",
        "partner_sent_at": "Отправлено вам", "partner_changed_at": "Статус с",
        "partner_times_utc": "Время указано по UTC.",
        "partner_packet": "Что написал для вас куратор",
        "partner_packet_explained": "Передано с согласия человека и только для этого направления. Храните это "
        "только там, где это нужно для работы.",
        "partner_display_name": "Имя", "partner_language": "Язык", "partner_note": "Заметка",
        "partner_contact": "Как связаться с человеком", "partner_health": "Сведения о здоровье",
        "partner_packet_gone": "Согласие человека больше не позволяет передавать вам эти сведения, или его дело "
        "стёрто: написанное куратором больше не показывается, а сообщения удалены. Завершить направление всё ещё "
        "можно.",
        "partner_actions": "Ваш ответ",
        "partner_accept": "Принять", "partner_decline": "Отклонить", "partner_start": "Начать работу",
        "partner_complete": "Завершить",
        "partner_accept_help": "Вы берёте направление в работу; куратор сразу это увидит.",
        "partner_decline_reason": "Причина отказа",
        "partner_decline_help": "Это прочитает куратор. Не пишите о человеке ничего лишнего.",
        "partner_start_help": "Работа с человеком началась.",
        "partner_outcome": "Результат",
        "partner_outcome_help": "Что сделано и что человеку может ещё понадобиться. Это прочитает куратор.",
        "partner_cost": "Оценка стоимости (необязательно)", "partner_amount": "Сумма", "partner_currency": "Валюта",
        "partner_cost_help": "Сколько стоила или будет стоить работа — для финансовых сотрудников, например "
        "{example}.",
        "partner_rule_accept": "Принять можно только направление, которое ждёт вашего ответа.",
        "partner_rule_decline": "Отклонить можно только до принятия. Если после принятия вы не можете продолжать, "
        "напишите куратору: отменить направление может только он.",
        "partner_rule_start": "Начать работу можно только после принятия.",
        "partner_rule_complete": "Завершить можно только после начала работы.",
        "partner_closed": "Это направление закрыто: с ним больше ничего нельзя сделать.",
        "partner_done_accept": "Вы приняли направление. Нажмите «Начать работу», когда работа с человеком начнётся.",
        "partner_done_decline": "Вы отклонили направление; куратор увидит это в деле.",
        "partner_done_start": "Работа начата: направление в работе.",
        "partner_done_complete": "Завершено. Куратор увидит результат.",
        "partner_done_message": "Сообщение отправлено.",
        "partner_messages": "Переписка с куратором", "partner_messages_none": "Сообщений пока нет.",
        "partner_from_caseworker": "Куратор", "partner_from_partner": "Ваша организация", "partner_new": "новое",
        "partner_message_text": "Ваше сообщение",
        "partner_message_help": "Его читают только кураторы этого человека. Пишите то, что нужно для работы, и не "
        "больше.",
        "partner_send": "Отправить",
        "partner_messages_closed": "Это направление закрыто больше {days} дней назад: сообщения можно читать, но "
        "новые писать нельзя.",
        "partner_refused_transition": "Не выполнено: статус направления теперь «{status}».",
        "partner_not_found_title": "Направление не найдено",
        "partner_not_found": "Такого направления в вашу организацию нет.",
        "partner_refused_reason": "Напишите, почему вы отклоняете (не больше 2000 знаков).",
        "partner_refused_outcome": "Напишите результат (не больше 4000 знаков).",
        "partner_refused_amount": "Укажите стоимость суммой, например {example}, или оставьте поле пустым.",
        "partner_refused_text": "Напишите сообщение (не больше 10 000 знаков).",
        "partner_refused_packet_withdrawn": "Написать сообщение нельзя: согласие человека больше не распространяется "
        "на это направление, и его сообщения удалены.",
        "partner_refused_unavailable": "Сервис направлений сейчас недоступен; попробуйте чуть позже. Ничего не "
        "изменено.",
        "partner_refused_sealed": "Система запечатана: ничего нельзя прочитать или изменить, пока её не откроют.",
        "partner_refused_busy": "Слишком много запросов сразу; подождите немного и попробуйте снова.",
        "partner_refused_forbidden": "Вашей учётной записи это не разрешено.",
        "partner_refused_other": "Система отказала (ошибка {status}). Ничего не изменено.",
        # The admin's form for a new account: a partner's staff member bound to a partner chosen by name.
        "admin_partner": "Партнёр (только для сотрудника партнёра)", "admin_partner_none": "Нет",
        "admin_partner_help": "Организация, в которой работает сотрудник партнёра; для всех остальных оставьте «Нет».",
    },
    "be": {
        "partner_inbox": "Накіраванні ў вашу арганізацыю",
        "partner_inbox_explained": "Накіраванні, якія куратары даслалі ў вашу арганізацыю; у кожнай групе спачатку "
        "новыя. Адкрыйце накіраванне, каб прачытаць, што напісаў вам куратар, адказаць на яго і напісаць куратару.",
        "partner_jump": "Групы", "partner_group_sent": "Чакаюць вашага адказу",
        "partner_group_accepted": "Прынятыя, праца не пачатая", "partner_group_in_progress": "У рабоце",
        "partner_group_closed": "Закрытыя", "partner_group_closed_note": "Паказаны апошнія закрытыя: {n}.",
        "partner_group_none": "Няма.", "partner_more_exist": "У гэтай групе больш накіраванняў, чым паказана.",
        "partner_status_sent": "Новае", "partner_status_accepted": "Прынята", "partner_status_in_progress":
        "У рабоце", "partner_status_completed": "Завершана", "partner_status_declined": "Адхілена",
        "partner_status_cancelled": "Скасавана",
        "partner_col_person": "Чалавек", "partner_col_received": "Атрымана", "partner_col_need": "Патрэба",
        "partner_col_language": "Мова", "partner_col_status": "Статус", "partner_col_messages": "Паведамленні",
        "partner_overdue": "Пратэрмінавана",
        "partner_overdue_rule": "накіраванне, на якое няма адказу праз {sent} пасля адпраўкі або праца па якім не "
        "пачалася праз {accepted} пасля прыняцця.",
        "partner_unread": "Новых паведамленняў: {n}", "partner_hidden": "(больш не паказваецца)",
        "partner_none_given": "не пазначана",
        "partner_cat_medical": "Медыцынская дапамога", "partner_cat_psychological": "Псіхалагічная дапамога",
        "partner_cat_relocation": "Пераезд", "partner_cat_legal": "Юрыдычная дапамога", "partner_cat_housing":
        "Жыллё", "partner_cat_employment": "Праца", "partner_cat_financial": "Фінансавая дапамога",
        "partner_lang_be": "беларуская", "partner_lang_ru": "руская", "partner_lang_uk": "украінская",
        "partner_lang_pl": "польская", "partner_lang_lt": "літоўская", "partner_lang_en": "англійская",
        "partner_referral": "Накіраванне", "partner_back": "Усе накіраванні",
        "partner_sent_at": "Даслана вам", "partner_changed_at": "Статус з",
        "partner_times_utc": "Час пазначаны па UTC.",
        "partner_packet": "Што напісаў для вас куратар",
        "partner_packet_explained": "Перададзена са згоды чалавека і толькі для гэтага накіравання. Захоўвайце гэта "
        "толькі там, дзе гэта трэба для працы.",
        "partner_display_name": "Імя", "partner_language": "Мова", "partner_note": "Нататка",
        "partner_contact": "Як звязацца з чалавекам", "partner_health": "Звесткі пра здароўе",
        "partner_packet_gone": "Згода чалавека больш не дазваляе перадаваць вам гэтыя звесткі, або яго справа "
        "сцёртая: напісанае куратарам больш не паказваецца, а паведамленні выдаленыя. Завяршыць накіраванне ўсё яшчэ "
        "можна.",
        "partner_actions": "Ваш адказ",
        "partner_accept": "Прыняць", "partner_decline": "Адхіліць", "partner_start": "Пачаць працу",
        "partner_complete": "Завяршыць",
        "partner_accept_help": "Вы бераце накіраванне ў працу; куратар адразу гэта ўбачыць.",
        "partner_decline_reason": "Прычына адмовы",
        "partner_decline_help": "Гэта прачытае куратар. Не пішыце пра чалавека нічога лішняга.",
        "partner_start_help": "Праца з чалавекам пачалася.",
        "partner_outcome": "Вынік",
        "partner_outcome_help": "Што зроблена і што чалавеку можа яшчэ спатрэбіцца. Гэта прачытае куратар.",
        "partner_cost": "Ацэнка кошту (неабавязкова)", "partner_amount": "Сума", "partner_currency": "Валюта",
        "partner_cost_help": "Колькі каштавала або будзе каштаваць праца — для фінансавых супрацоўнікаў, напрыклад "
        "{example}.",
        "partner_rule_accept": "Прыняць можна толькі накіраванне, якое чакае вашага адказу.",
        "partner_rule_decline": "Адхіліць можна толькі да прыняцця. Калі пасля прыняцця вы не можаце працягваць, "
        "напішыце куратару: скасаваць накіраванне можа толькі ён.",
        "partner_rule_start": "Пачаць працу можна толькі пасля прыняцця.",
        "partner_rule_complete": "Завяршыць можна толькі пасля пачатку працы.",
        "partner_closed": "Гэтае накіраванне закрытае: з ім больш нічога нельга зрабіць.",
        "partner_done_accept": "Вы прынялі накіраванне. Націсніце «Пачаць працу», калі праца з чалавекам пачнецца.",
        "partner_done_decline": "Вы адхілілі накіраванне; куратар убачыць гэта ў справе.",
        "partner_done_start": "Праца пачатая: накіраванне ў рабоце.",
        "partner_done_complete": "Завершана. Куратар убачыць вынік.",
        "partner_done_message": "Паведамленне адпраўлена.",
        "partner_messages": "Перапіска з куратарам", "partner_messages_none": "Паведамленняў пакуль няма.",
        "partner_from_caseworker": "Куратар", "partner_from_partner": "Ваша арганізацыя", "partner_new": "новае",
        "partner_message_text": "Ваша паведамленне",
        "partner_message_help": "Яго чытаюць толькі куратары гэтага чалавека. Пішыце тое, што трэба для працы, і не "
        "больш.",
        "partner_send": "Адправіць",
        "partner_messages_closed": "Гэтае накіраванне закрытае больш за {days} дзён таму: паведамленні можна "
        "чытаць, але пісаць новыя нельга.",
        "partner_refused_transition": "Не зроблена: статус накіравання цяпер «{status}».",
        "partner_not_found_title": "Накіраванне не знойдзена",
        "partner_not_found": "Такога накіравання ў вашу арганізацыю няма.",
        "partner_refused_reason": "Напішыце, чаму вы адхіляеце (не больш за 2000 знакаў).",
        "partner_refused_outcome": "Напішыце вынік (не больш за 4000 знакаў).",
        "partner_refused_amount": "Пазначце кошт сумай, напрыклад {example}, або пакіньце поле пустым.",
        "partner_refused_text": "Напішыце паведамленне (не больш за 10 000 знакаў).",
        "partner_refused_packet_withdrawn": "Напісаць паведамленне нельга: згода чалавека больш не ахоплівае гэтае "
        "накіраванне, і яго паведамленні выдаленыя.",
        "partner_refused_unavailable": "Сэрвіс накіраванняў зараз недаступны; паспрабуйце крыху пазней. Нічога не "
        "зменена.",
        "partner_refused_sealed": "Сістэма запячатаная: нічога нельга прачытаць або змяніць, пакуль яе не адкрыюць.",
        "partner_refused_busy": "Занадта шмат запытаў адразу; пачакайце крыху і паспрабуйце зноў.",
        "partner_refused_forbidden": "Вашаму ўліковаму запісу гэта не дазволена.",
        "partner_refused_other": "Сістэма адмовіла (памылка {status}). Нічога не зменена.",
        # The admin's form for a new account: a partner's staff member bound to a partner chosen by name.
        "admin_partner": "Партнёр (толькі для супрацоўніка партнёра)", "admin_partner_none": "Няма",
        "admin_partner_help": "Арганізацыя, у якой працуе супрацоўнік партнёра; для ўсіх астатніх пакіньце «Няма».",
    },
    "pl": {
        # What every person passes through before the partner console: sign-in and the second factor.
        "app": "Rehab Support", "skip": "Przejdź do treści", "language_choice": "Język", "problem": "Uwaga",
        "sign_in": "Zaloguj się", "sign_out": "Wyloguj się", "username": "Nazwa użytkownika", "password": "Hasło",
        "bad_credentials": "Nazwa użytkownika, hasło lub kod jednorazowy są nieprawidłowe.",
        "otp": "Kod jednorazowy", "otp_help": "Z aplikacji uwierzytelniającej albo jeden z kodów odzyskiwania. Za "
        "pierwszym razem zostaw to pole puste: aplikację skonfigurujesz w następnym kroku.",
        "expired": "Sesja wygasła. Zaloguj się ponownie.",
        "stale_form": "Formularz logowania był nieaktualny. Spróbuj ponownie.",
        "mfa_title": "Skonfiguruj drugi składnik logowania", "mfa_why": "Samo hasło można wyłudzić albo odgadnąć. "
        "Od teraz logujesz się hasłem i kodem z aplikacji w telefonie.",
        "mfa_step_app": "Zainstaluj aplikację uwierzytelniającą (Aegis, FreeOTP, Google Authenticator, 2FAS…).",
        "mfa_step_scan": "Zeskanuj w niej ten kod.", "mfa_qr": "Kod QR nowego drugiego składnika",
        "mfa_or_type": "Albo wpisz w aplikacji ten klucz:", "mfa_step_code": "Wpisz sześć cyfr, które pokazuje "
        "aplikacja.", "mfa_code": "Kod z aplikacji", "mfa_confirm": "Potwierdź",
        "mfa_wrong_code": "Kod jest nieprawidłowy albo wygasł. Zacznij od nowa z nowym kluczem.",
        "mfa_start_again": "Zacznij od nowa", "mfa_codes_title": "Twoje kody odzyskiwania",
        "mfa_codes_why": "Zapisz je i przechowuj w bezpiecznym miejscu, z dala od telefonu. Każdy z nich zadziała "
        "raz zamiast kodu z aplikacji, jeśli telefon zginie albo zostanie odebrany. Wyświetlamy je tylko teraz.",
        "mfa_sign_in_now": "Zaloguj się teraz kodem z aplikacji", "nothing_here": "Nic tu nie ma.",
        # The partner console.
        "partner_inbox": "Skierowania do Twojej organizacji",
        "partner_inbox_explained": "Skierowania, które opiekunowie spraw wysłali do Twojej organizacji; w każdej "
        "grupie najnowsze na górze. Otwórz skierowanie, aby przeczytać, co napisał opiekun sprawy, odpowiedzieć "
        "na nie i napisać do opiekuna.",
        "partner_jump": "Grupy", "partner_group_sent": "Czekają na Twoją odpowiedź",
        "partner_group_accepted": "Przyjęte, jeszcze nierozpoczęte", "partner_group_in_progress": "W realizacji",
        "partner_group_closed": "Zamknięte", "partner_group_closed_note": "Pokazano ostatnio zamknięte: {n}.",
        "partner_group_none": "Brak.", "partner_more_exist": "W tej grupie jest więcej skierowań, niż pokazuje ta "
        "strona.",
        "partner_status_sent": "Nowe", "partner_status_accepted": "Przyjęte", "partner_status_in_progress":
        "W realizacji", "partner_status_completed": "Zakończone", "partner_status_declined": "Odrzucone",
        "partner_status_cancelled": "Anulowane",
        "partner_col_person": "Osoba", "partner_col_received": "Otrzymano", "partner_col_need": "Potrzeba",
        "partner_col_language": "Język", "partner_col_status": "Status", "partner_col_messages": "Wiadomości",
        "partner_overdue": "Zaległe",
        "partner_overdue_rule": "skierowanie bez odpowiedzi w ciągu {sent} od wysłania albo nierozpoczęte w ciągu "
        "{accepted} od przyjęcia.",
        "partner_unread": "Nowe wiadomości: {n}", "partner_hidden": "(już niewidoczne)",
        "partner_none_given": "nie podano",
        "partner_cat_medical": "Pomoc medyczna", "partner_cat_psychological": "Wsparcie psychologiczne",
        "partner_cat_relocation": "Relokacja", "partner_cat_legal": "Pomoc prawna", "partner_cat_housing":
        "Mieszkanie", "partner_cat_employment": "Praca", "partner_cat_financial": "Pomoc finansowa",
        "partner_lang_be": "białoruski", "partner_lang_ru": "rosyjski", "partner_lang_uk": "ukraiński",
        "partner_lang_pl": "polski", "partner_lang_lt": "litewski", "partner_lang_en": "angielski",
        "partner_referral": "Skierowanie", "partner_back": "Wszystkie skierowania",
        "partner_sent_at": "Otrzymano", "partner_changed_at": "Status od",
        "partner_times_utc": "Godziny podano w czasie UTC.",
        "partner_packet": "Co napisał opiekun sprawy",
        "partner_packet_explained": "Przekazano za zgodą tej osoby i tylko na potrzeby tego skierowania. "
        "Przechowuj te informacje tylko tam, gdzie są potrzebne do pracy.",
        "partner_display_name": "Imię", "partner_language": "Język", "partner_note": "Notatka",
        "partner_contact": "Jak skontaktować się z tą osobą", "partner_health": "Informacje o zdrowiu",
        "partner_packet_gone": "Zgoda tej osoby nie pozwala już przekazywać tych informacji Twojej organizacji albo "
        "jej sprawa została usunięta: to, co napisał opiekun sprawy, nie jest już widoczne, a wiadomości zostały "
        "usunięte. Skierowanie nadal można zakończyć.",
        "partner_actions": "Twoja odpowiedź",
        "partner_accept": "Przyjmij", "partner_decline": "Odrzuć", "partner_start": "Rozpocznij",
        "partner_complete": "Zakończ",
        "partner_accept_help": "Bierzesz skierowanie do realizacji; opiekun sprawy od razu to zobaczy.",
        "partner_decline_reason": "Powód odrzucenia",
        "partner_decline_help": "Przeczyta to opiekun sprawy. Nie pisz o tej osobie niczego, co nie jest potrzebne.",
        "partner_start_help": "Praca z tą osobą się rozpoczęła.",
        "partner_outcome": "Wynik",
        "partner_outcome_help": "Co zostało zrobione i czego ta osoba może jeszcze potrzebować. Przeczyta to opiekun "
        "sprawy.",
        "partner_cost": "Szacunkowy koszt (opcjonalnie)", "partner_amount": "Kwota", "partner_currency": "Waluta",
        "partner_cost_help": "Ile kosztowała lub będzie kosztować praca — dla osób zajmujących się finansami, np. "
        "{example}.",
        "partner_rule_accept": "Przyjąć można tylko skierowanie, które czeka na Twoją odpowiedź.",
        "partner_rule_decline": "Odrzucić można tylko przed przyjęciem. Jeśli po przyjęciu nie możesz kontynuować, "
        "napisz do opiekuna sprawy: tylko on może anulować skierowanie.",
        "partner_rule_start": "Rozpocząć można dopiero po przyjęciu.",
        "partner_rule_complete": "Zakończyć można dopiero po rozpoczęciu.",
        "partner_closed": "To skierowanie jest zamknięte: nie można już nic z nim zrobić.",
        "partner_done_accept": "Skierowanie zostało przyjęte. Kliknij „Rozpocznij”, gdy zacznie się praca z tą osobą.",
        "partner_done_decline": "Skierowanie zostało odrzucone; opiekun sprawy zobaczy to w sprawie.",
        "partner_done_start": "Rozpoczęto: skierowanie jest w realizacji.",
        "partner_done_complete": "Zakończono. Opiekun sprawy zobaczy wynik.",
        "partner_done_message": "Wiadomość została wysłana.",
        "partner_messages": "Wiadomości z opiekunem sprawy", "partner_messages_none": "Nie ma jeszcze wiadomości.",
        "partner_from_caseworker": "Opiekun sprawy", "partner_from_partner": "Twoja organizacja",
        "partner_new": "nowa",
        "partner_message_text": "Twoja wiadomość",
        "partner_message_help": "Czytają ją tylko opiekunowie sprawy tej osoby. Pisz tyle, ile potrzeba do pracy, "
        "i nic więcej.",
        "partner_send": "Wyślij",
        "partner_messages_closed": "To skierowanie zamknięto ponad {days} dni temu: wiadomości można czytać, ale "
        "nie można pisać nowych.",
        "partner_refused_transition": "Nie wykonano: skierowanie ma teraz status „{status}”.",
        "partner_not_found_title": "Nie znaleziono skierowania",
        "partner_not_found": "Do Twojej organizacji nie skierowano takiego skierowania.",
        "partner_refused_reason": "Napisz, dlaczego odrzucasz (najwyżej 2000 znaków).",
        "partner_refused_outcome": "Opisz wynik (najwyżej 4000 znaków).",
        "partner_refused_amount": "Podaj koszt jako kwotę, np. {example}, albo zostaw to pole puste.",
        "partner_refused_text": "Napisz wiadomość (najwyżej 10 000 znaków).",
        "partner_refused_packet_withdrawn": "Nie można napisać wiadomości: zgoda tej osoby nie obejmuje już tego "
        "skierowania, a jego wiadomości zostały usunięte.",
        "partner_refused_unavailable": "Usługa skierowań jest teraz niedostępna; spróbuj ponownie za chwilę. Niczego "
        "nie zmieniono.",
        "partner_refused_sealed": "System jest zapieczętowany: nie można niczego odczytać ani zmienić, dopóki nie "
        "zostanie ponownie otwarty.",
        "partner_refused_busy": "Zbyt wiele żądań naraz; poczekaj chwilę i spróbuj ponownie.",
        "partner_refused_forbidden": "Twoje konto nie ma do tego uprawnień.",
        "partner_refused_other": "System odmówił (błąd {status}). Niczego nie zmieniono.",
    },
    "lt": {
        # What every person passes through before the partner console: sign-in and the second factor.
        "app": "Rehab Support", "skip": "Pereiti prie turinio", "language_choice": "Kalba", "problem": "Dėmesio",
        "sign_in": "Prisijungti", "sign_out": "Atsijungti", "username": "Naudotojo vardas", "password": "Slaptažodis",
        "bad_credentials": "Neteisingas naudotojo vardas, slaptažodis arba vienkartinis kodas.",
        "otp": "Vienkartinis kodas", "otp_help": "Iš autentifikavimo programėlės arba vienas iš atkūrimo kodų. "
        "Pirmą kartą palikite tuščią: programėlę nustatysite kitame žingsnyje.",
        "expired": "Jūsų sesija baigėsi. Prisijunkite iš naujo.",
        "stale_form": "Prisijungimo forma nebegaliojo. Bandykite dar kartą.",
        "mfa_title": "Nustatykite antrąjį prisijungimo veiksnį", "mfa_why": "Vien slaptažodį galima išvilioti arba "
        "atspėti. Nuo šiol jungsitės slaptažodžiu ir kodu iš programėlės telefone.",
        "mfa_step_app": "Įdiekite autentifikavimo programėlę (Aegis, FreeOTP, Google Authenticator, 2FAS…).",
        "mfa_step_scan": "Nuskaitykite ja šį kodą.", "mfa_qr": "Naujo antrojo veiksnio QR kodas",
        "mfa_or_type": "Arba įveskite šį raktą programėlėje:", "mfa_step_code": "Įveskite šešis skaitmenis, kuriuos "
        "rodo programėlė.", "mfa_code": "Kodas iš programėlės", "mfa_confirm": "Patvirtinti",
        "mfa_wrong_code": "Kodas neteisingas arba nebegalioja. Pradėkite iš naujo su nauju raktu.",
        "mfa_start_again": "Pradėti iš naujo", "mfa_codes_title": "Jūsų atkūrimo kodai",
        "mfa_codes_why": "Užsirašykite juos ir laikykite saugioje vietoje, atskirai nuo telefono. Kiekvienas kodas "
        "veikia vieną kartą vietoj programėlės kodo, jei telefoną pamestumėte arba jis būtų atimtas. Jie rodomi tik "
        "dabar.",
        "mfa_sign_in_now": "Prisijunkite dabar su kodu iš programėlės", "nothing_here": "Čia nieko nėra.",
        # The partner console.
        "partner_inbox": "Siuntimai jūsų organizacijai",
        "partner_inbox_explained": "Siuntimai, kuriuos atvejo vadybininkai išsiuntė jūsų organizacijai; kiekvienoje "
        "grupėje naujausi viršuje. Atidarykite siuntimą, kad perskaitytumėte, ką jums parašė atvejo vadybininkas, "
        "atsakytumėte į jį ir parašytumėte vadybininkui.",
        "partner_jump": "Grupės", "partner_group_sent": "Laukia jūsų atsakymo",
        "partner_group_accepted": "Priimti, dar nepradėti", "partner_group_in_progress": "Vykdomi",
        "partner_group_closed": "Uždaryti", "partner_group_closed_note": "Rodomi vėliausiai uždaryti: {n}.",
        "partner_group_none": "Nėra.", "partner_more_exist": "Šioje grupėje yra daugiau siuntimų, nei rodoma "
        "puslapyje.",
        "partner_status_sent": "Naujas", "partner_status_accepted": "Priimtas", "partner_status_in_progress":
        "Vykdomas", "partner_status_completed": "Užbaigtas", "partner_status_declined": "Atmestas",
        "partner_status_cancelled": "Atšauktas",
        "partner_col_person": "Asmuo", "partner_col_received": "Gauta", "partner_col_need": "Poreikis",
        "partner_col_language": "Kalba", "partner_col_status": "Būsena", "partner_col_messages": "Žinutės",
        "partner_overdue": "Vėluoja",
        "partner_overdue_rule": "siuntimas, į kurį neatsakyta per {sent} nuo išsiuntimo arba kurio vykdymas "
        "nepradėtas per {accepted} nuo priėmimo.",
        "partner_unread": "Naujų žinučių: {n}", "partner_hidden": "(neberodoma)",
        "partner_none_given": "nenurodyta",
        "partner_cat_medical": "Medicininė pagalba", "partner_cat_psychological": "Psichologinė pagalba",
        "partner_cat_relocation": "Persikėlimas", "partner_cat_legal": "Teisinė pagalba", "partner_cat_housing":
        "Būstas", "partner_cat_employment": "Įdarbinimas", "partner_cat_financial": "Finansinė pagalba",
        "partner_lang_be": "baltarusių", "partner_lang_ru": "rusų", "partner_lang_uk": "ukrainiečių",
        "partner_lang_pl": "lenkų", "partner_lang_lt": "lietuvių", "partner_lang_en": "anglų",
        "partner_referral": "Siuntimas", "partner_back": "Visi siuntimai",
        "partner_sent_at": "Išsiųsta jums", "partner_changed_at": "Būsena nuo",
        "partner_times_utc": "Laikas nurodytas UTC.",
        "partner_packet": "Ką jums parašė atvejo vadybininkas",
        "partner_packet_explained": "Perduota asmeniui sutikus ir tik šiam siuntimui. Laikykite šią informaciją tik "
        "ten, kur jos reikia darbui.",
        "partner_display_name": "Vardas", "partner_language": "Kalba", "partner_note": "Pastaba",
        "partner_contact": "Kaip susisiekti su asmeniu", "partner_health": "Sveikatos informacija",
        "partner_packet_gone": "Asmens sutikimas nebeleidžia jums perduoti šios informacijos arba jo byla ištrinta: "
        "tai, ką parašė atvejo vadybininkas, neberodoma, o žinutės ištrintos. Siuntimą vis dar galite užbaigti.",
        "partner_actions": "Jūsų atsakymas",
        "partner_accept": "Priimti", "partner_decline": "Atmesti", "partner_start": "Pradėti",
        "partner_complete": "Užbaigti",
        "partner_accept_help": "Jūs imatės šio siuntimo; atvejo vadybininkas tai pamatys iš karto.",
        "partner_decline_reason": "Atmetimo priežastis",
        "partner_decline_help": "Tai perskaitys atvejo vadybininkas. Nerašykite apie asmenį nieko nereikalingo.",
        "partner_start_help": "Darbas su asmeniu prasidėjo.",
        "partner_outcome": "Rezultatas",
        "partner_outcome_help": "Kas padaryta ir ko asmeniui dar gali prireikti. Tai perskaitys atvejo vadybininkas.",
        "partner_cost": "Numatoma kaina (neprivaloma)", "partner_amount": "Suma", "partner_currency": "Valiuta",
        "partner_cost_help": "Kiek darbas kainavo arba kainuos – finansų darbuotojams, pvz., {example}.",
        "partner_rule_accept": "Priimti galima tik siuntimą, kuris laukia jūsų atsakymo.",
        "partner_rule_decline": "Atmesti galima tik prieš priimant. Jei priėmę negalite tęsti, parašykite atvejo "
        "vadybininkui: tik jis gali atšaukti siuntimą.",
        "partner_rule_start": "Pradėti galima tik priėmus siuntimą.",
        "partner_rule_complete": "Užbaigti galima tik pradėjus darbą.",
        "partner_closed": "Šis siuntimas uždarytas: su juo nieko daugiau padaryti negalima.",
        "partner_done_accept": "Siuntimą priėmėte. Spauskite „Pradėti“, kai prasidės darbas su asmeniu.",
        "partner_done_decline": "Siuntimą atmetėte; atvejo vadybininkas tai matys byloje.",
        "partner_done_start": "Pradėta: siuntimas vykdomas.",
        "partner_done_complete": "Užbaigta. Atvejo vadybininkas matys rezultatą.",
        "partner_done_message": "Žinutė išsiųsta.",
        "partner_messages": "Žinutės su atvejo vadybininku", "partner_messages_none": "Žinučių dar nėra.",
        "partner_from_caseworker": "Atvejo vadybininkas", "partner_from_partner": "Jūsų organizacija",
        "partner_new": "nauja",
        "partner_message_text": "Jūsų žinutė",
        "partner_message_help": "Ją skaito tik šio asmens atvejo vadybininkai. Rašykite tai, ko reikia darbui, ir "
        "nieko daugiau.",
        "partner_send": "Siųsti",
        "partner_messages_closed": "Šis siuntimas uždarytas prieš daugiau nei {days} d.: žinutes galima skaityti, "
        "bet naujų rašyti negalima.",
        "partner_refused_transition": "Neatlikta: siuntimo būsena dabar „{status}“.",
        "partner_not_found_title": "Siuntimas nerastas",
        "partner_not_found": "Jūsų organizacijai tokio siuntimo nėra.",
        "partner_refused_reason": "Parašykite, kodėl atmetate (ne daugiau kaip 2000 ženklų).",
        "partner_refused_outcome": "Parašykite rezultatą (ne daugiau kaip 4000 ženklų).",
        "partner_refused_amount": "Nurodykite kainą suma, pvz., {example}, arba palikite lauką tuščią.",
        "partner_refused_text": "Parašykite žinutę (ne daugiau kaip 10 000 ženklų).",
        "partner_refused_packet_withdrawn": "Žinutės parašyti negalima: asmens sutikimas šiam siuntimui nebegalioja, "
        "o jo žinutės ištrintos.",
        "partner_refused_unavailable": "Siuntimų paslauga šiuo metu nepasiekiama; bandykite po akimirkos. Niekas "
        "nepakeista.",
        "partner_refused_sealed": "Sistema užplombuota: nieko negalima perskaityti ar pakeisti, kol ji vėl nebus "
        "atidaryta.",
        "partner_refused_busy": "Per daug užklausų vienu metu; palaukite akimirką ir bandykite dar kartą.",
        "partner_refused_forbidden": "Jūsų paskyrai tai neleidžiama.",
        "partner_refused_other": "Sistema atsisakė tai atlikti (klaida {status}). Niekas nepakeista.",
    },
}
for _language, _words in _PARTNER_MESSAGES.items():
    MESSAGES.setdefault(_language, {}).update(_words)


# "N days" in each language's sentences, by CLDR's plural category of N: the count form in en, be and ru, the genitive
# in pl ("w ciągu 3 dni"), the accusative in lt ("per 3 dienas").
_DAY_FORMS = {
    "en": {"one": "day", "other": "days"},
    "ru": {"one": "день", "few": "дня", "many": "дней", "other": "дня"},
    "be": {"one": "дзень", "few": "дні", "many": "дзён", "other": "дня"},
    "pl": {"one": "dnia", "other": "dni"},
    "lt": {"one": "dieną", "few": "dienas", "many": "dienos", "other": "dienų"},
}


def count_days(days: int, language: str) -> str:
    """A number of days as the partner console's sentences take it ("within {sent}", "через {sent}", "w ciągu
    {sent}", "per {sent}")."""
    language = chosen(language)
    forms = _DAY_FORMS[language]
    form = forms.get(Locale.parse(language).plural_form(days), forms["other"])
    return f"{babel_numbers.format_decimal(days, locale=language)}{_NBSP}{form}"
