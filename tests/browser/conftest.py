"""A real Chromium (Debian's, driven by Playwright) on the dev chat page, against the real
service, PostgreSQL and the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, async_playwright
from pytest_aiohttp import AiohttpServer

from service.app import create_app
from service.devtools.browser import launch_chromium
from service.devtools.chat_page import ChatPageConfig, add_chat_page
from service.settings import Settings

from ..conftest import Sandbox
from ..helpers import token


@dataclass
class ChatPage:
    """One dev user's page, with the uncaught errors of its scripts (a test asserts none)."""

    page: Page
    user: int
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    async def send(self, content: str) -> None:
        await self.page.get_by_test_id("composer").fill(content)
        await self.page.get_by_test_id("send").click()

    async def messages(self) -> list[dict[str, str]]:
        """Every message element, in page order: content, seq, state, id."""
        found: list[dict[str, str]] = await self.page.eval_on_selector_all(
            '[data-testid="message"]',
            """items => items.map(item => ({
                content: item.querySelector(".content").textContent,
                seq: item.dataset.seq, state: item.dataset.state, id: item.dataset.id,
            }))""",
        )
        return found

    async def stats(self) -> dict[str, int]:
        counted: dict[str, int] = await self.page.evaluate("() => window.chat.client.stats")
        return counted


OpenPage: TypeAlias = Callable[[int], Awaitable[ChatPage]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        yield launched
        await launched.close()


@pytest.fixture
async def chat_server(
    aiohttp_server: AiohttpServer,
    make_settings: Callable[..., Settings],
    sandbox: Sandbox,
    db: asyncpg.Connection,
) -> TestServer:
    """The service with the dev chat page, as `python -m service dev` serves it."""
    app = create_app(make_settings())
    add_chat_page(
        app,
        ChatPageConfig(
            token_for=lambda user: token(user),
            pusher_key=sandbox.state.config.key,
            ws_port=sandbox.port,
        ),
    )
    server: TestServer = await aiohttp_server(app)
    return server


@pytest.fixture
async def open_page(browser: Browser, chat_server: TestServer) -> AsyncIterator[OpenPage]:
    contexts = []
    pages: list[ChatPage] = []

    async def open_as(user: int) -> ChatPage:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        chat = ChatPage(page, user)
        page.on("pageerror", lambda error: chat.errors.append(str(error)))
        page.on("console", lambda message: chat.console.append(f"{message.type}: {message.text}"))
        await page.goto(str(chat_server.make_url(f"/chat/?user={user}")))
        await page.get_by_test_id("composer").wait_for(state="visible")
        await page.wait_for_function(
            "() => window.chat && window.chat.client.connectionState === 'connected'"
        )
        pages.append(chat)
        return chat

    yield open_as
    for context in contexts:
        await context.close()
