"""The browser half of scripts/e2e-openwebui.sh: headless Chromium through Open WebUI 0.12.4.

    python rig/openwebui_e2e.py --url http://127.0.0.1:40086 --out DIR --api-log FILE --meta-pid PID --phase main
    python rig/openwebui_e2e.py --url ... --out DIR --api-log FILE --phase wrong-key

Runs with Open WebUI's virtualenv (selenium lives there).  Each scenario records its
timings and what it saw in DIR/e2e-<phase>.json and saves screenshots DIR/<scenario>-*.png;
a scenario that fails is recorded and the next one still runs.  The selectors are Open
WebUI 0.12.4's (`#chat-input`, `#send-message-button`, the "Stop" button's aria-label,
`#response-content-container`, `?models=` in the URL).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

IDLE_LIMIT = 30.0  # api.upstream_idle_timeout's default, which the local stack uses


class Browser:
    def __init__(self, url: str, out: Path):
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            opts.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        self.url = url
        self.out = out

    def close(self) -> None:
        self.driver.quit()

    def shot(self, name: str) -> str:
        path = self.out / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path.name

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def answer_text(self) -> str:
        boxes = self.driver.find_elements(By.ID, "response-content-container")
        return boxes[-1].text if boxes else ""

    def until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if check():
                    return time.monotonic() - t0
            except Exception:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what}: not within {timeout:g}s")

    def generating(self) -> bool:
        return bool(self.driver.find_elements(By.CSS_SELECTOR, 'button[aria-label="Stop"]'))

    def _dialog_button(self) -> Any:
        for label in ("Okay, Let's Go!", "Get started"):
            for button in self.driver.find_elements(By.XPATH, f'//button[normalize-space()="{label}"]'):
                if button.is_displayed():
                    return button
        return None

    def dismiss_dialogs(self) -> None:
        """The "What's New" changelog a fresh Open WebUI shows once, over the chat (if it comes, within 3 s)."""
        try:
            self.until(lambda: self._dialog_button() is not None, 3, "changelog dialog")
        except TimeoutError:
            return
        self._dialog_button().click()

    def ask(self, model: str, question: str) -> float:
        """Open a new chat with `model` selected, send `question`; returns when it was sent."""
        self.driver.get(f"{self.url}/?models={model}")
        self.until(lambda: self.driver.find_element(By.ID, "chat-input").is_displayed(), 120, "chat input")
        self.dismiss_dialogs()
        box = self.driver.find_element(By.ID, "chat-input")
        box.click()
        box.send_keys(question)
        self.until(lambda: self.driver.find_element(By.ID, "send-message-button").is_enabled(), 30, "send button")
        self.driver.find_element(By.ID, "send-message-button").click()
        return time.monotonic()


def api_lines(api_log: Path, needle: str) -> list[str]:
    try:
        return [line for line in api_log.read_text(errors="replace").splitlines() if needle in line]
    except OSError:
        return []


def agent(b: Browser, args: argparse.Namespace) -> dict[str, Any]:
    sent = b.ask("ai-sysadmin", "Why did nginx.service fail on this host?")
    first = b.until(lambda: "Investigating" in b.text() or "Thinking" in b.text(), 120, "live steps")
    live = b.shot("agent-1-steps-live")
    done = b.until(lambda: not b.generating() and b.answer_text(), 900, "answer finished")
    final = b.shot("agent-2-answer")
    text = b.text()
    return {
        "first_visible_s": round(first, 1),
        "total_s": round(time.monotonic() - sent, 1),
        "raw_details_tag_shown": "<details" in text,
        "screenshots": [live, final],
        "ok": "<details" not in text and done > 0,
    }


def role_model(b: Browser, args: argparse.Namespace) -> dict[str, Any]:
    before = len(api_lines(args.api_log, "model=meta status=200"))
    sent = b.ask("meta", "Say hello in five words.")
    b.until(lambda: not b.generating() and b.answer_text(), 600, "role answer")
    shot = b.shot("role-1-answer")
    lines = api_lines(args.api_log, "model=meta status=200")
    return {
        "total_s": round(time.monotonic() - sent, 1),
        "screenshots": [shot],
        "access_lines_for_meta": len(lines) - before,
        "ok": len(lines) > before,
    }


def stop_button(b: Browser, args: argparse.Namespace) -> dict[str, Any]:
    before = len(api_lines(args.api_log, "status=499"))
    b.ask("meta", "Write a very long story about a full disk, at least two thousand words.")
    b.until(lambda: len(b.answer_text()) > 20, 600, "story started")
    b.driver.find_element(By.CSS_SELECTOR, 'button[aria-label="Stop"]').click()
    stopped = time.monotonic()
    b.until(lambda: not b.generating(), 30, "generation stopped")
    shot = b.shot("stop-1-stopped")
    b.until(lambda: len(api_lines(args.api_log, "status=499")) > before, 30, "API saw the client leave")
    return {"api_499_after_s": round(time.monotonic() - stopped, 1), "screenshots": [shot], "ok": True}


def stopped_meta(b: Browser, args: argparse.Namespace) -> dict[str, Any]:
    b.ask("ai-sysadmin", "Is the disk on this host filling up?")
    # Stop the meta server once the model is writing (mid-answer, not before its first token).
    b.until(lambda: len(b.answer_text()) > 5 or "→" in b.text(), 900, "meta model writing")
    os.kill(args.meta_pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        shown = b.until(
            lambda: any(s in b.text() for s in ("went silent", "stopped answering", "investigation failed")),
            IDLE_LIMIT + 90,
            "the error in the chat",
        )
        shot = b.shot("stopped-meta-1-error")
    finally:
        os.kill(args.meta_pid, signal.SIGCONT)
    return {
        "error_shown_after_s": round(shown, 1),
        "stopped_for_s": round(time.monotonic() - t0, 1),
        "screenshots": [shot],
        "ok": shown < IDLE_LIMIT + 90,
    }


def wrong_key(b: Browser, args: argparse.Namespace) -> dict[str, Any]:
    before = len(api_lines(args.api_log, "status=401"))
    b.driver.get(b.url)
    # Loading the page makes Open WebUI list the models: with a wrong key the API answers 401.
    seen_401 = b.until(lambda: len(api_lines(args.api_log, "status=401")) > before, 60, "401 for the model list")
    shot1 = b.shot("wrong-key-1-models")
    try:
        b.ask("ai-sysadmin", "hello")
        b.until(lambda: "not found" in b.text(), 30, "the error Open WebUI shows")
    except Exception as exc:  # no model selectable: the send button may stay disabled
        print(f"e2e: wrong key: {exc.__class__.__name__}: {exc}")
    shot2 = b.shot("wrong-key-2-send")
    return {
        "api_401_after_s": round(seen_401, 1),
        "model_not_found_shown": "was not found" in b.text(),
        "screenshots": [shot1, shot2],
        "ok": True,
    }


PHASES = {"main": (agent, role_model, stop_button, stopped_meta), "wrong-key": (wrong_key,)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--api-log", type=Path, required=True)
    ap.add_argument("--meta-pid", type=int, default=0)
    ap.add_argument("--phase", choices=sorted(PHASES), required=True)
    args = ap.parse_args()
    b = Browser(args.url, args.out)
    results: dict[str, Any] = {}
    try:
        for scenario in PHASES[args.phase]:
            t0 = time.monotonic()
            try:
                results[scenario.__name__] = scenario(b, args)
            except Exception as exc:
                results[scenario.__name__] = {
                    "ok": False,
                    "error": f"{exc.__class__.__name__}: {exc}",
                    "screenshots": [b.shot(f"{scenario.__name__}-failed")],
                }
                traceback.print_exc()
            results[scenario.__name__]["wall_s"] = round(time.monotonic() - t0, 1)
            print(f"e2e: {scenario.__name__}: {json.dumps(results[scenario.__name__])}", flush=True)
    finally:
        b.close()
    (args.out / f"e2e-{args.phase}.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r.get("ok") for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
