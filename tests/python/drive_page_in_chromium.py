"""Opens the local endpoint's page in a real headless Chromium over the DevTools protocol,
types a query into the query box, clicks Run, waits for the result, and prints what the
page shows (table header and rows, chart points and series, schema text, error) as JSON;
saves a screenshot.

usage: drive_page_in_chromium.py CHROMIUM URL DATABASE QUERY SCREENSHOT_PNG PROFILE_DIR
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

from websockets.sync.client import connect


class Page:
    def __init__(self, url):
        self.socket = connect(url, max_size=64 * 1024 * 1024)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"waited {seconds} s for {expression}")


def main():
    chromium, url, database, query, screenshot, profile = sys.argv[1:7]
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--window-size=1280,1000", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.time() > deadline:
                raise TimeoutError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = open(port_file).read().split("\n")[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        page.wait_for("document.readyState === 'complete' && document.getElementById('db').options.length > 0")
        page.evaluate(f"document.getElementById('db').value = {json.dumps(database)}")
        page.evaluate(f"document.getElementById('query').value = {json.dumps(query)}")
        page.evaluate("document.getElementById('run').click()")
        page.wait_for("document.querySelectorAll('#result tr').length > 0 || document.getElementById('error').textContent !== ''")
        # The overview refreshes every 2 s: wait until it lists the query just run.
        page.wait_for("document.getElementById('requests').textContent.includes('/v2/rest/query')")
        shown = page.evaluate("""(() => ({
            header: [...document.querySelectorAll('#result th')].map(e => e.textContent),
            rows: [...document.querySelectorAll('#result tr')].slice(1)
                .map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)),
            points: document.querySelectorAll('#chart svg circle').length,
            series: [...document.querySelectorAll('#chart svg polyline')].map(e => e.getAttribute('data-series')),
            schema: document.getElementById('schema').textContent,
            rate: document.getElementById('rate').textContent,
            requests: [...document.querySelectorAll('#requests tr')].slice(1)
                .map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)),
            error: document.getElementById('error').textContent,
            external: performance.getEntriesByType('resource').map(e => e.name)
                .filter(n => !n.startsWith(location.origin)),
        }))()""")
        image = page.call("Page.captureScreenshot", format="png")
        with open(screenshot, "wb") as out:
            out.write(base64.b64decode(image["data"]))
        print(json.dumps(shown))
    finally:
        browser.kill()
        browser.wait()


if __name__ == "__main__":
    main()
