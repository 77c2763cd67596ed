"""The demo project in a real browser: Debian's chromium driven by Playwright.

One daphne process serves demo/ on its own SQLite database (migrate + seed_demo);
alice and bob use it from two browser contexts (two people, two cookie jars).
Screenshots go to test-artifacts/browser/; with UPDATE_SCREENSHOTS=1 the ones the
docs show are also copied to docs/_static/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.servers import ROOT, demo_env, demo_manage, demo_server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install -e '.[test]' installs playwright"
)
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1100, "height": 700}
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOCS_SCREENSHOTS = ROOT / "docs" / "_static" / "screenshots"
# Pushes normally land in milliseconds; this is only the give-up time.
TIMEOUT = 10_000
PASSWORDS = {"alice": "demo", "bob": "demo", "admin": "admin"}  # seed_demo's users

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: `make system-deps` installs it")
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install chromium, or make system-deps)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The base URL of the demo served by daphne on a fresh, seeded database."""
    workdir = tmp_path_factory.mktemp("demo")
    env = demo_env(workdir / "db.sqlite3")
    demo_manage(env, "migrate", "--noinput", "-v", "0")
    demo_manage(env, "seed_demo")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with demo_server(env, ARTIFACTS / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class People:
    """Logged-in pages, one browser context (cookie jar) per user."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts = {}
        self.errors = []

    def page(self, username: str | None, path: str = "/"):
        """A page of `username`'s (None: an anonymous visitor), once it is live."""
        context = self.contexts.get(username)
        if context is None and username is None:
            context = self.browser.new_context(
                viewport=VIEWPORT, base_url=self.base_url
            )
            context.set_default_timeout(TIMEOUT)
            self.contexts[username] = context
            page = context.new_page()
            self._watch(page, "anonymous")
            page.goto(path)
        elif context is None:
            context = self.browser.new_context(
                viewport=VIEWPORT, base_url=self.base_url
            )
            context.set_default_timeout(TIMEOUT)
            self.contexts[username] = context
            login = context.new_page()
            self._watch(login, username)
            login.goto("/accounts/login/")
            login.fill("#id_username", username)
            login.fill("#id_password", PASSWORDS[username])
            login.click("button[type=submit]")
            expect(login.locator("#whoami")).to_have_text(username)
            login.goto(path)
            page = login
        else:
            page = context.new_page()
            self._watch(page, username)
            page.goto(path)
        # The pill turns "live" on the server's `connection` frame.
        expect(page.locator("#status")).to_have_attribute("data-state", "online")
        return page

    def _watch(self, page, username: str) -> None:
        """Collect uncaught exceptions and console errors: the test fails on any."""

        def console(message) -> None:
            if message.type == "error":
                self.errors.append(f"{username}: {message.text}")

        page.on("pageerror", lambda error: self.errors.append(f"{username}: {error}"))
        page.on("console", console)

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()


@pytest.fixture
def people(browser, demo):
    people = People(browser, demo)
    yield people
    people.close()
    assert people.errors == [], "errors in the browser console"


def shot(page, name: str, docs: bool = False) -> None:
    """Save a screenshot in the artefacts; `docs` ones are the docs' illustrations."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    if docs and os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")


def row(page, name: str):
    return page.locator(
        "#products tr", has=page.get_by_role("cell", name=name, exact=True)
    )


def test_a_change_in_one_window_appears_in_the_other(people):
    alice = people.page("alice")
    bob = people.page("bob")
    expect(bob.locator("#pager")).to_have_text(re.compile(r"page 1 of 4 · 30 products"))
    expect(row(bob, "AeroPress")).to_contain_text("34.95")

    # alice edits a price: bob's row changes by itself (a retrieve push).
    row(alice, "AeroPress").get_by_role("button", name="Edit").click()
    expect(alice.locator("#form-title")).to_have_text("Edit “AeroPress”")
    alice.fill("#f-price", "31.50")
    alice.click("#save")
    expect(alice.locator("#form-message")).to_have_text("Saved “AeroPress”.")
    expect(row(bob, "AeroPress")).to_contain_text("31.50")

    # alice creates a product that sorts first: it enters bob's first page.
    alice.click("#new")
    alice.fill("#f-name", "Aardvark Mug")
    alice.fill("#f-price", "9.90")
    alice.select_option("#f-category", label="Tools")
    alice.click("#save")
    expect(bob.locator("#products tr").first).to_contain_text("Aardvark Mug")
    expect(bob.locator("#pager")).to_have_text(re.compile(r"31 products"))
    shot(bob, "catalogue-live")

    # Search with pagination: the watch follows the query.
    bob.fill("#query", "coffee")
    expect(bob.locator("#pager")).to_have_text(re.compile(r"page 1 of 1 · \d products"))
    bob.fill("#query", "")
    expect(bob.locator("#pager")).to_have_text(re.compile(r"page 1 of 4 · 31 products"))
    bob.click("#next")
    expect(bob.locator("#pager")).to_have_text(re.compile(r"page 2 of 4"))
    bob.fill("#query", "o")  # many matches: still paged
    expect(bob.locator("#pager")).to_have_text(re.compile(r"page 1 of \d+"))
    bob.fill("#query", "kenya")
    expect(bob.locator("#products tr")).to_have_count(1)
    # A change to the searched row still reaches the searching window.
    alice.fill("#query", "kenya")
    row(alice, "Kenya Nyeri AA").get_by_role("button", name="Edit").click()
    alice.fill("#f-price", "17.00")
    alice.click("#save")
    expect(row(bob, "Kenya Nyeri AA")).to_contain_text("17.00")
    shot(bob, "catalogue-search")


def test_the_form_shows_the_serializer_errors(people):
    alice = people.page("alice")
    alice.click("#new")
    alice.fill("#f-name", "Broken Mug")
    alice.fill("#f-price", "-5")
    alice.click("#save")
    price_error = alice.locator('.field-error[data-field="price"]')
    expect(price_error).to_have_text("Price cannot be negative.")
    expect(alice.locator("#f-price")).to_have_attribute("aria-invalid", "true")
    expect(alice.locator("#f-name")).not_to_have_attribute("aria-invalid", "true")

    alice.fill("#f-name", "ab")
    alice.fill("#f-price", "abc")
    alice.click("#save")
    expect(alice.locator('.field-error[data-field="name"]')).to_have_text(
        "Use at least 3 characters."
    )
    expect(price_error).to_have_text("A valid number is required.")
    shot(alice, "catalogue-form-errors", docs=True)

    # Fixed, it saves; nothing invalid was created meanwhile.
    alice.fill("#f-name", "Sturdy Mug")
    alice.fill("#f-price", "12")
    alice.click("#save")
    expect(alice.locator("#form-message")).to_have_text("Saved “Sturdy Mug”.")
    expect(price_error).to_be_hidden()


def test_chat_and_notifications(people):
    alice = people.page("alice", "/chat/")
    bob = people.page("bob", "/chat/")
    expect(alice.locator("#status")).to_contain_text("#lobby")

    # The chat room: a relay to the "lobby" channel, named by the server's sender.
    alice.fill("#chat-text", "Hello bob, the Kenya is in!")
    alice.press("#chat-text", "Enter")
    message = bob.locator("#messages li", has_text="Hello bob, the Kenya is in!")
    expect(message.locator(".who")).to_have_text("alice")
    expect(alice.locator("#messages li.mine")).to_contain_text("Hello bob")
    bob.fill("#chat-text", "Great, I'll take two bags.")
    bob.press("#chat-text", "Enter")
    expect(alice.locator("#messages li", has_text="two bags")).to_contain_text("bob")

    # notify.users relayed by bob, to alice only.
    bob.select_option("#direct-to", label="alice")
    bob.fill("#direct-text", "Your order is packed.")
    bob.click("#direct-form button[type=submit]")
    inbox = alice.locator("#inbox li", has_text="Your order is packed.")
    expect(inbox.locator(".who")).to_have_text("bob")

    # Server code: request.notify_self answers this window only ...
    alice.click("#ring")
    expect(alice.locator("#inbox li", has_text="Ding!")).to_have_count(1)
    # ... notify.users reaches every window of the user, a few seconds later ...
    second = people.page("alice", "/chat/")
    alice.click("#remind")
    for page in (alice, second):
        expect(page.locator("#inbox li", has_text="Reminder:")).to_have_count(1)
    expect(bob.locator("#inbox li", has_text="Reminder:")).to_have_count(0)
    expect(second.locator("#inbox li", has_text="Ding!")).to_have_count(0)
    # ... and notify.all is for staff: alice's announce is a 403, admin's reaches all.
    alice.click("#announce")
    expect(alice.locator("#server-message")).to_contain_text("permission")
    admin = people.page("admin", "/chat/")
    admin.click("#announce")
    for page in (alice, second, bob, admin):
        expect(
            page.locator("#inbox li", has_text="Announcement from admin")
        ).to_be_visible()
    shot(alice, "chat-notifications", docs=True)


def test_each_user_sees_only_their_own_notes(people):
    alice = people.page("alice", "/notes/")
    alice_again = people.page("alice", "/notes/")
    bob = people.page("bob", "/notes/")
    expect(alice.locator("#notes li")).to_have_count(2)
    expect(bob.locator("#notes")).to_contain_text("Restock paper filters")
    expect(bob.locator("#notes")).not_to_contain_text("Order more Kenya")

    alice.fill("#note-text", "Surprise party for bob on Friday")
    alice.press("#note-text", "Enter")
    # Live in alice's other window, first (newest first) ...
    expect(alice_again.locator("#notes li").first).to_contain_text("Surprise party")
    expect(alice_again.locator("#note-count")).to_have_text("3 notes")
    # ... and never in bob's, even after his own change went through.
    bob.fill("#note-text", "Buy a present for alice")
    bob.press("#note-text", "Enter")
    expect(bob.locator("#notes li").first).to_contain_text("Buy a present")
    expect(bob.locator("#notes li")).to_have_count(3)
    expect(bob.locator("#notes")).not_to_contain_text("Surprise party")
    expect(alice.locator("#notes")).not_to_contain_text("Buy a present")

    # Ticking a note off is pushed to alice's other window too.
    alice.locator("#notes li", has_text="Surprise party").locator("input").check()
    expect(alice_again.locator("#notes li.done")).to_contain_text("Surprise party")
    shot(alice_again, "notes-alice", docs=True)
    shot(bob, "notes-bob", docs=True)


def test_anonymous_visitors_read_but_do_not_write(people):
    visitor = people.page(None)
    expect(visitor.locator("#whoami")).to_have_text("Anonymous")
    expect(visitor.locator("#status")).not_to_contain_text("#lobby")
    expect(visitor.locator("#pager")).to_have_text(re.compile(r"\d+ products"))
    visitor.fill("#f-name", "Free Mug")
    visitor.fill("#f-price", "1")
    visitor.click("#save")
    expect(visitor.locator("#form-message")).to_contain_text(
        "Authentication credentials were not provided."
    )
    visitor.goto("/notes/")
    expect(visitor.locator(".empty")).to_contain_text("Notes are private")
    visitor.goto("/chat/")
    expect(visitor.locator("#status")).to_have_attribute("data-state", "online")
    expect(visitor.locator(".empty")).to_contain_text("log in")
