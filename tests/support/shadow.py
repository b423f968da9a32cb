"""Reaching into the extension's panel, which lives in a closed shadow root: the page's
scripts (and so Playwright's selectors) cannot, the DevTools protocol can. Clicks and
typing go through Playwright's mouse and keyboard, so they are trusted user events, the
only ones the extension acts on."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Panel"]


class Panel:
    """The panel under ``host`` (``[data-yttl=panel]``) of ``page``."""

    def __init__(self, page: Any, host: str = "[data-yttl=panel]") -> None:
        self.page = page
        self.host = host
        self.cdp = page.context.new_cdp_session(page)

    def _find(self, selector: str) -> int | None:
        document = self.cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})
        found = self.cdp.send(
            "DOM.querySelector", {"nodeId": document["root"]["nodeId"], "selector": self.host}
        )
        if not found.get("nodeId"):
            return None
        node = self.cdp.send(
            "DOM.describeNode", {"nodeId": found["nodeId"], "depth": 1, "pierce": True}
        )["node"]
        roots = node.get("shadowRoots") or []
        if not roots:
            return None
        pushed = self.cdp.send(
            "DOM.pushNodesByBackendIdsToFrontend", {"backendNodeIds": [roots[0]["backendNodeId"]]}
        )
        inner = self.cdp.send(
            "DOM.querySelector", {"nodeId": pushed["nodeIds"][0], "selector": selector}
        )
        return int(inner["nodeId"]) or None

    def wait(self, selector: str, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = self._find(selector)
            if node is not None:
                return node
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no {selector!r} in the panel within {timeout} s")

    def text(self, selector: str) -> str:
        return str(self.call(selector, "function () { return this.textContent; }"))

    def call(self, selector: str, function: str) -> Any:
        """``function`` called with the panel's ``selector`` element as ``this``; its
        value (JSON)."""
        node = self.wait(selector)
        remote = self.cdp.send("DOM.resolveNode", {"nodeId": node})["object"]
        value = self.cdp.send(
            "Runtime.callFunctionOn",
            {
                "objectId": remote["objectId"],
                "returnByValue": True,
                "functionDeclaration": function,
            },
        )
        return value["result"].get("value")

    def wait_true(self, selector: str, function: str, timeout: float = 30.0) -> None:
        """Until ``call(selector, function)`` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._find(selector) is not None and self.call(selector, function):
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{function!r} on {selector!r} never true within {timeout} s")

    def click(self, selector: str) -> None:
        node = self.wait(selector)
        self.cdp.send("DOM.scrollIntoViewIfNeeded", {"nodeId": node})
        quad = self.cdp.send("DOM.getContentQuads", {"nodeId": node})["quads"][0]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        self.page.mouse.click(x, y)

    def fill(self, selector: str, text: str) -> None:
        self.click(selector)
        self.page.keyboard.insert_text(text)
