"""The console's words in Belarusian, Russian and English, and dates and money written as each locale writes them.

Babel is not installed: the three locales are formatted by hand (be/ru: "1 234,50 €", "23.11.2026"; en: "€1,234.50",
"23 Nov 2026")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

LANGUAGES = ("be", "ru", "en")
DEFAULT = "en"
LANGUAGE_NAMES = {"be": "Беларуская", "ru": "Русский", "en": "English"}

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

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SYMBOLS = {"EUR": "€", "USD": "$", "PLN": "zł", "GBP": "£"}
_NARROW_NBSP = "\u202f"  # groups thousands in be/ru without letting a line break split the number
_NBSP = "\u00a0"


def chosen(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT


def translator(language: str):
    messages = MESSAGES[chosen(language)]
    return lambda key: messages.get(key, MESSAGES[DEFAULT].get(key, key))


def format_date(value: date | datetime | str | None, language: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    shown = value.strftime("%H:%M") if isinstance(value, datetime) else None
    day = value.date() if isinstance(value, datetime) else value
    text = f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}" if chosen(language) == "en" else day.strftime("%d.%m.%Y")
    return f"{text} {shown}" if shown else text


def format_money(amount: str | Decimal | None, currency: str, language: str) -> str:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"
    sign = "-" if value < 0 else ""
    whole, _, fraction = f"{abs(value):.2f}".partition(".")
    symbol = _SYMBOLS.get(currency)
    if chosen(language) == "en":
        grouped = f"{int(whole):,}"
        return f"{sign}{symbol}{grouped}.{fraction}" if symbol else f"{sign}{grouped}.{fraction}{_NBSP}{currency}"
    grouped = f"{int(whole):,}".replace(",", _NARROW_NBSP)
    return f"{sign}{grouped},{fraction}{_NBSP}{symbol or currency}"
