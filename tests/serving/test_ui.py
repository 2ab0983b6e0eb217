"""The dashboard (/_sandbox/ui) and the API reference (/_sandbox/docs): over plain HTTP on both stores
(escaping, the token, the switches, 404s, caps), and in a real browser, Debian's chromium driven by
selenium, headless."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from helpers import STORES, Served, auth, minimal_profile, post_json, store_config
from mypreferences_sandbox.testing.control_client import ControlClient
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

XSS_CLIENT = "<img src=x onerror=alert(1)>"
XSS_NAME = '<script>alert("name")</script>'
# A RIGHT-TO-LEFT OVERRIDE: shown bare, it reverses whatever follows it on the line.
RLO_CLIENT = "acme\u202e"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module", params=STORES)
def site(request: pytest.FixtureRequest) -> Iterator[Served]:
    """A sandbox of this module's own, on each store: its dashboard lists only these tests' clients."""
    with Served(store_config(request, "ui")) as served:
        yield served


@pytest.fixture
def sandbox(site: Served) -> Iterator[Served]:
    """The module's sandbox, emptied after each test."""
    yield site
    ControlClient(site.url).reset()


def page(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, timeout=10)


def client_url(base: str, client_id: str) -> str:
    return f"{base}/_sandbox/ui/clients/{quote(client_id, safe='')}"


def rows(text: str, table: str) -> list[str]:
    """The rows of the table of id ``table`` in an HTML page, but its header."""
    found = re.search(rf'<table id="{table}">(.*?)</table>', text, re.S)
    return re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)[1:] if found else []


def cells(row: str) -> list[str]:
    """The text of each cell of a row, its markup dropped and its entities read."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def create(base: str, client_id: str, **fields: object) -> dict:
    response = post_json(f"{base}/{quote(client_id, safe='')}/Profile", minimal_profile(**fields))
    assert response.status_code == 201, response.text
    return response.json()


# --- over plain HTTP --------------------------------------------------------------------------


def test_the_dashboard_lists_clients_counts_rules_and_requests(sandbox):
    create(sandbox.url, "acme")
    create(sandbox.url, "acme", Emails=[{"EmailAddress": "bo@example.com"}])
    ControlClient(sandbox.url).configure_account("globex", {"AlternateIdTypes": ["CRM"]})
    rule = ControlClient(sandbox.url).add_fault(match={"clientId": "acme"}, respond={"status": 503}, times=2)
    post_json(f"{sandbox.url}/acme/Profile", minimal_profile())

    response = page(f"{sandbox.url}/_sandbox/ui")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    clients = rows(response.text, "clients")
    assert [cells(row) for row in clients] == [["acme", "2"], ["globex", "0"]]
    [fault] = rows(response.text, "faults")
    # The rule, what it does, and its counters: matched, hits, remaining.
    assert cells(fault) == [rule["id"], '{"clientId": "acme"}', "respond 503", "1", "1", "1", ""]
    journal = rows(response.text, "journal")
    assert len(journal) == 3 and "503" in journal[0] and rule["id"] in journal[0]


def test_a_client_page_lists_its_profiles_and_links_each(sandbox):
    created = create(sandbox.url, "acme", CustomerName={"FirstName": "Ann", "LastName": "Lee"})
    requests.post(f"{sandbox.url}/acme/Profile/{created['ProfileId']}/Deactivate", headers=auth(), timeout=10)

    listing = page(client_url(sandbox.url, "acme"))
    one = page(f"{client_url(sandbox.url, 'acme')}/profiles/{created['ProfileId']}")

    [row] = rows(listing.text, "profiles")
    assert cells(row)[:4] == [str(created["ProfileId"]), "no", "Ann Lee", "ann@example.com"]
    assert f'href="/_sandbox/ui/clients/acme/profiles/{created["ProfileId"]}"' in row
    assert one.status_code == 200
    assert "&#34;FirstName&#34;: &#34;Ann&#34;" in one.text


def test_a_client_id_and_a_profile_field_are_escaped_everywhere(sandbox):
    created = create(sandbox.url, XSS_CLIENT, CustomerName={"FirstName": XSS_NAME})
    ControlClient(sandbox.url).add_fault(match={"clientId": XSS_CLIENT, "path": "/<b>*"}, delay={"fixed": 1})

    pages = [
        page(f"{sandbox.url}/_sandbox/ui"),
        page(client_url(sandbox.url, XSS_CLIENT)),
        page(f"{client_url(sandbox.url, XSS_CLIENT)}/profiles/{created['ProfileId']}"),
    ]

    for response in pages:
        assert response.status_code == 200
        assert "<img" not in response.text and "<script" not in response.text and "<b>" not in response.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
        # Nothing is loaded or run, even what the escaping might miss.
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in pages[1].text
    assert "&lt;script&gt;alert(\\&#34;name\\&#34;)&lt;/script&gt;" in pages[2].text


def test_a_client_page_says_which_of_its_profiles_it_shows_and_of_how_many(sandbox):
    for _ in range(2):  # another client's profiles hold the first ProfileIds
        create(sandbox.url, "globex")
    for _ in range(3):
        create(sandbox.url, "acme")

    first, beyond = page(client_url(sandbox.url, "acme")), page(client_url(sandbox.url, "acme"), page="2")

    # Positions in the client's list, not ProfileIds (these are 3 to 5), and the client's total.
    assert "Profiles 1 to 3 of 3, in order of ProfileId." in first.text
    assert [cells(row)[0] for row in rows(first.text, "profiles")] == ["3", "4", "5"]
    assert "No profile on this page (3 in all)." in beyond.text


def test_a_client_id_holding_a_bidi_control_is_isolated_everywhere(sandbox):
    created = create(sandbox.url, RLO_CLIENT, CustomerName={"FirstName": "\u202eAnn", "LastName": "Lee"})
    isolated = f"<bdi>{RLO_CLIENT}</bdi>"

    dashboard = page(f"{sandbox.url}/_sandbox/ui")
    client = page(client_url(sandbox.url, RLO_CLIENT))
    profile = page(f"{client_url(sandbox.url, RLO_CLIENT)}/profiles/{created['ProfileId']}")

    [listed] = rows(dashboard.text, "clients")
    assert f"{isolated}</a></td>" in listed
    [journaled] = rows(dashboard.text, "journal")
    assert f"{isolated}</a></td>" in journaled and f"<bdi>/{RLO_CLIENT}/Profile</bdi>" in journaled
    assert f"<h1>Client <code>{isolated}</code></h1>" in client.text
    # Each part of the name on its own, so that the override reverses nothing but the FirstName.
    [row] = rows(client.text, "profiles")
    assert "<td><bdi>\u202eAnn</bdi> <bdi>Lee</bdi></td>" in row
    assert f"<code>{isolated}</code></a></h1>" in profile.text
    # A title holds no markup: isolates, as characters, do the same there.
    assert f"<title>\u2068{RLO_CLIENT}\u2069 · " in client.text
    # In the JSON text an override is shown as its escape, which means the same.
    assert "\u202e" not in profile.text.split('<pre id="profile">')[1]
    assert "&#34;FirstName&#34;: &#34;\\u202eAnn&#34;" in profile.text


def test_the_dashboard_answers_with_a_trailing_slash_too(sandbox):
    create(sandbox.url, "acme")

    response = page(f"{sandbox.url}/_sandbox/ui/")

    assert response.status_code == 200
    assert [cells(row) for row in rows(response.text, "clients")] == [["acme", "1"]]


@pytest.mark.parametrize(
    "path",
    [
        "/_sandbox/ui/clients/nobody",
        "/_sandbox/ui/clients/nobody/profiles/1",
        "/_sandbox/ui/clients/acme/profiles/999",
        "/_sandbox/ui/clients/globex/profiles/{id}",  # acme's profile, under another clientId
        "/_sandbox/ui/clients/acme/profiles/99999999999999999999999",
        "/_sandbox/docs/index.html",
    ],
)
def test_unknown_clients_profiles_and_files_are_404(sandbox, path):
    created = create(sandbox.url, "acme")
    create(sandbox.url, "globex", Emails=[])

    response = page(sandbox.url + path.format(id=created["ProfileId"]))

    assert response.status_code == 404


@pytest.mark.parametrize("number", ["0", "-1", "x", "1.5", "", "1" * 10])
def test_a_page_number_from_1_or_a_400(sandbox, number):
    create(sandbox.url, "acme")

    statuses = {
        page(url, page=number).status_code
        for url in (f"{sandbox.url}/_sandbox/ui", client_url(sandbox.url, "acme"))
    }

    assert statuses == {400}


def test_lists_are_capped_and_paged(sandbox):
    control = ControlClient(sandbox.url)
    many = {f"c{n:03}": [minimal_profile(Emails=[])] for n in range(201)}
    control.import_state({"clients": {**many, "big": [minimal_profile(Emails=[]) for _ in range(1001)]}})

    first, last = page(f"{sandbox.url}/_sandbox/ui"), page(f"{sandbox.url}/_sandbox/ui", page="2")
    profiles = page(client_url(sandbox.url, "big"))
    end = page(client_url(sandbox.url, "big"), page="6")

    assert (len(rows(first.text, "clients")), len(rows(last.text, "clients"))) == (200, 2)
    assert 'rel="next" href="/_sandbox/ui?page=2"' in first.text and 'rel="next"' not in last.text
    assert re.search(r">big</bdi></a></td><td[^>]*>1000\+<", first.text)
    assert len(rows(profiles.text, "profiles")) == 200
    # The total is capped as the dashboard's count is, but where the page reads further.
    assert "Profiles 1 to 200 of 1000+," in profiles.text and "Profiles 1001 to 1001 of 1001," in end.text
    assert 'href="/_sandbox/ui/clients/big?page=2"' in profiles.text
    assert len(rows(end.text, "profiles")) == 1 and 'rel="next"' not in end.text


def test_a_token_locks_the_dashboard_and_its_links_carry_it():
    with Served({"CONTROL_TOKEN": TOKEN}) as locked:
        create(locked.url, "acme")
        url = f"{locked.url}/_sandbox/ui"

        missing, wrong, odd = page(url), page(url, token="wrong"), page(url, token="ñ")
        by_query, by_header = (
            page(url, token=TOKEN),
            requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10),
        )
        # The query parameter is the dashboard's alone: the rest of the plane wants the header.
        control = page(f"{locked.url}/_sandbox/faults", token=TOKEN)
        reference = page(f"{locked.url}/_sandbox/docs")

    assert (missing.status_code, wrong.status_code, odd.status_code, control.status_code) == (401,) * 4
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (by_query.status_code, by_header.status_code, reference.status_code) == (200, 200, 200)
    links = re.findall(r'href="(/_sandbox/ui[^"]*)"', by_query.text)
    assert links and all(link.endswith(f"token={TOKEN}") for link in links)


def test_a_numeric_token_from_the_environment_works(monkeypatch):
    monkeypatch.setenv("SANDBOX_CONTROL_TOKEN", "12345")
    with Served() as locked:
        response = page(f"{locked.url}/_sandbox/ui", token="12345")

    assert response.status_code == 200


def test_turned_off_the_dashboard_is_404_and_the_reference_still_answers():
    with Served({"CONTROL": False}) as off:
        dashboard, reference = page(f"{off.url}/_sandbox/ui"), page(f"{off.url}/_sandbox/docs")
        script = page(f"{off.url}/_sandbox/docs/swagger-ui-bundle.js")

    assert (dashboard.status_code, reference.status_code, script.status_code) == (404, 200, 200)


def test_the_reference_is_served_by_the_sandbox_itself(sandbox):
    text = page(f"{sandbox.url}/_sandbox/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', text)
    served = [page(sandbox.url + asset) for asset in assets if asset.startswith("/")]

    assert set(assets) == {"data:,", "/_sandbox/docs/swagger-ui.css", "/_sandbox/docs/swagger-ui-bundle.js"}
    assert [(response.status_code, len(response.content) > 100_000) for response in served] == [
        (200, True)
    ] * 2
    assert '"/_sandbox/openapi.json"' in text


# --- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Debian's chromium, headless, driven through Debian's chromedriver, both named by path so that
    Selenium Manager never tries to download one; the console log is kept (goog:loggingPrefs)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = "no browser: install Debian's chromium and chromium-driver (.ci/run does)"
        # In CI a missing browser is a broken set-up, never a pass; on a developer's machine the
        # browser tests are skipped, saying why, and the rest of the suite runs.
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.implicitly_wait(10)  # a page reached by a click may still be loading
    try:
        yield chrome
    finally:
        chrome.quit()


def console_errors(chrome: webdriver.Chrome) -> list[dict]:
    """The console's errors since the last call (reading the log empties it)."""
    return [entry for entry in chrome.get_log("browser") if entry["level"] == "SEVERE"]


def test_in_a_browser_the_dashboard_shows_what_was_created_over_the_api(sandbox, browser):
    created = create(sandbox.url, "acme", CustomerName={"FirstName": "Ann", "LastName": "Lee"})
    rule = ControlClient(sandbox.url).add_fault(match={"clientId": "acme"}, respond={"status": 503})
    console_errors(browser)

    browser.get(f"{sandbox.url}/_sandbox/ui")
    clients = browser.find_element(By.ID, "clients").text
    faults = browser.find_element(By.ID, "faults").text
    browser.find_element(By.LINK_TEXT, "acme").click()
    profiles = browser.find_element(By.ID, "profiles").text
    browser.find_element(By.LINK_TEXT, str(created["ProfileId"])).click()
    profile = browser.find_element(By.ID, "profile").text

    assert "acme 1" in clients
    assert rule["id"] in faults and "respond 503" in faults
    assert "Ann Lee" in profiles
    assert '"FirstName": "Ann"' in profile
    assert console_errors(browser) == []


def test_in_a_browser_a_token_given_once_is_carried_by_the_links(browser):
    with Served({"CONTROL_TOKEN": TOKEN}) as locked:
        create(locked.url, "acme")
        console_errors(browser)

        browser.get(f"{locked.url}/_sandbox/ui?token={TOKEN}")
        browser.find_element(By.LINK_TEXT, "acme").click()
        browser.find_element(By.LINK_TEXT, "1").click()
        profile = browser.find_element(By.ID, "profile").text

    assert '"ProfileId": 1' in profile
    assert console_errors(browser) == []


def test_in_a_browser_the_api_reference_lists_the_operations(browser):
    with Served() as served:  # the reference is the same on either store
        console_errors(browser)

        browser.get(f"{served.url}/_sandbox/docs")
        paths = WebDriverWait(browser, 30).until(
            lambda chrome: chrome.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        shown = {path.text.replace("\u200b", "") for path in paths}
        title = browser.find_element(By.CSS_SELECTOR, ".info .title").text

    assert "/{clientId}/Profile" in shown  # create_profile's path
    assert "MyPreferences sandbox" in title
    assert console_errors(browser) == []
