"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): browse to a stored value, and to a refused request's signature diagnostics.

Data is written with properly TC3-signed Tencent requests against the real kvmux binary (auth
enforced); one request is signed with the wrong secret so the inspector has something to explain.
Screenshots go to $KVMUX_SCREENSHOTS, else target/browser/; the run's summary lists each one with
the test that took it (conftest.py).
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import pathlib
import struct
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("KVMUX_BIN", str(ROOT / "target" / "debug" / "kvmux"))
SHOTS = pathlib.Path(os.environ.get("KVMUX_SCREENSHOTS") or ROOT / "target" / "browser")
SECRET_ID = "AKIDkvmuxdev"
SECRET = "kvmuxdevsecret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bson_document(fields):
    """A BSON document of string and int32 fields, encoded by hand (no BSON library needed)."""
    body = b""
    for name, value in fields.items():
        cname = name.encode() + b"\0"
        if isinstance(value, int):
            body += b"\x10" + cname + struct.pack("<i", value)
        else:
            raw = value.encode() + b"\0"
            body += b"\x02" + cname + struct.pack("<i", len(raw)) + raw
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def key_string(text):
    """kv-doc's order-preserving key encoding of a string (rank 0x20, 0x00 escaped, 0x00 0x00)."""
    return b"\x20" + text.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def key_number(n):
    """... and of a number: its f64 with the sign bit flipped (all bits when negative), then a
    zero remainder as 0x8000."""
    bits = struct.unpack(">Q", struct.pack(">d", float(n)))[0]
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return b"\x10" + struct.pack(">Q", bits) + b"\x80\x00"


# A Huawei table keyed by (owner, n), as kv-huawei stores it: the schema in the attrs, each
# document under the encoding of its key fields.
TABLE_ATTRS = {"shard_fields": ["owner"], "sort_fields": ["n"], "lsi": [], "gsi": [], "ttl": None,
               "request_hex": ""}
SEED = [
    {"type": "header", "format": 1},
    {"type": "container", "id": 1, "account": "dev", "scope": "huawei/shop", "name": "files",
     "kind": "document", "attrs": TABLE_ATTRS},
    {"type": "item", "container": 1, "key_b64": base64.b64encode(key_string("ann") + key_number(7)).decode(),
     "value_b64": base64.b64encode(bson_document({"owner": "ann", "n": 7, "size": 7})).decode()},
    # kvmux's own account (Aliyun upload staging): never listed as a tenant.
    {"type": "container", "id": 2, "account": "_kvmux", "scope": "aliyun-uploads", "name": "objects",
     "kind": "flat", "attrs": {}},
    {"type": "item", "container": 2, "key": "grant/kvupload/leftover", "value": "{}"},
]


@pytest.fixture(scope="module")
def gateway():
    """The real binary on a free 127.0.0.1 port with a fresh data dir and a seed file holding a
    Huawei document; stopped by its PID."""
    yield from run_gateway()


ADMIN_TOKEN = "browser-test-admin-token-0123"


@pytest.fixture(scope="module")
def locked_gateway():
    """The same, with an admin token configured (required on loopback too)."""
    yield from run_gateway(f'[admin]\ntoken = "{ADMIN_TOKEN}"\n')


def run_gateway(extra=""):
    tmp = tempfile.mkdtemp(prefix="kvmux-browser-")
    port = free_port()
    seeds = pathlib.Path(tmp) / "seeds"
    seeds.mkdir()
    (seeds / "huawei.jsonl").write_text("".join(json.dumps(line) + "\n" for line in SEED))
    config = pathlib.Path(tmp) / "kvmux.toml"
    config.write_text(f'listen = "127.0.0.1:{port}"\ndata_dir = "{tmp}/data"\nseed_dir = "{seeds}"\n{extra}')
    log = open(pathlib.Path(tmp) / "kvmux.log", "wb")
    proc = subprocess.Popen([BIN, "serve", "--config", str(config)], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_kvmux/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None, "kvmux exited early"
        assert time.monotonic() < deadline, "kvmux did not become healthy in 30 s"
        time.sleep(0.05)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


def tencent(base, action, params, secret=SECRET):
    """One TC3-HMAC-SHA256 signed EdgeOne call, signed as Tencent's SDKs sign it."""
    host = base.removeprefix("http://")
    payload = json.dumps(params)
    ts = int(time.time())
    date = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join([
        "POST", "/", "",
        f"content-type:application/json\nhost:{host}\n",
        "content-type;host",
        hashlib.sha256(payload.encode()).hexdigest(),
    ])
    scope = f"{date}/teo/tc3_request"
    to_sign = "\n".join([
        "TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest(),
    ])

    def mac(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret).encode(), date), "teo"), "tc3_request")
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(base + "/", data=payload.encode(), method="POST", headers={
        "Content-Type": "application/json",
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": "2022-09-01",
        "X-TC-Timestamp": str(ts),
        "Authorization": f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, "
                         f"SignedHeaders=content-type;host, Signature={signature}",
    })
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["Response"]


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="kvmux-chromium-")
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1600,1000", f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout=15):
    return WebDriverWait(driver, timeout).until(condition)


@pytest.fixture
def shot(request):
    """shot(driver, name): a screenshot in SHOTS, recorded on the test's report so the run's
    summary names it (conftest.py)."""
    def take(driver, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / name
        assert driver.save_screenshot(str(path))
        assert path.stat().st_size > 10_000, "a blank screenshot"
        request.node.user_properties.append(("screenshot", str(path)))
        return path
    return take


def fault_rules(base):
    with urllib.request.urlopen(base + "/_kvmux/faults", timeout=10) as r:
        return json.load(r)["faults"]


def test_browse_to_a_stored_json_value_with_its_ttl(gateway, browser, shot):
    assert "Error" not in tencent(gateway, "CreateEdgeKVNamespace", {"ZoneId": "zone-1", "Namespace": "orders"})
    put = tencent(gateway, "EdgeKVPut", {"ZoneId": "zone-1", "Namespace": "orders", "Key": "greeting",
                                         "Value": '{"hello": "world", "n": 42}', "ExpirationTTL": 3600})
    assert "Error" not in put, put
    assert "Error" not in tencent(gateway, "EdgeKVPut", {"ZoneId": "zone-1", "Namespace": "orders",
                                                         "Key": "other", "Value": "plain text"})

    browser.get(gateway + "/_kvmux/ui")
    row = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, '.container-row[data-name="orders"]')))
    assert "tencent" in row.text and "2 ·" in row.text, row.text
    row.click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, '.key-row[data-key="other"]')))

    # Prefix search narrows the key list.
    prefix = browser.find_element(By.ID, "prefix")
    prefix.send_keys("gre", Keys.ENTER)
    # The list is cleared, then refilled when the reply arrives: wait for its final contents.
    wait(browser, lambda d: [r.get_attribute("data-key")
                             for r in d.find_elements(By.CSS_SELECTOR, ".key-row")] == ["greeting"])

    browser.find_element(By.CSS_SELECTOR, '.key-row[data-key="greeting"]').click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "value"), '"hello": "world"'))
    assert browser.find_element(By.ID, "value-format").text == "json"
    assert json.loads(browser.find_element(By.ID, "value").text) == {"hello": "world", "n": 42}
    ttl = browser.find_element(By.ID, "value-ttl").text
    seconds = int(ttl.split(" s")[0])
    assert 3500 <= seconds <= 3600, ttl
    assert browser.find_element(By.ID, "value-key").text == "greeting"
    shot(browser, "dashboard-value.png")


HUAWEI_KEY = '{"owner": "ann", "n": 7}'


def test_a_huawei_document_is_shown_as_extended_json_under_its_decoded_key(gateway, browser, shot):
    browser.get(gateway + "/_kvmux/ui")
    wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, '.container-row[data-name="files"]'))).click()
    # The engine key (the order-preserving encoding of owner and n) is shown decoded and named
    # by the table's key schema, not as hex.
    row = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, ".key-row")))
    assert row.get_attribute("data-key") == HUAWEI_KEY, row.get_attribute("data-key")
    assert row.find_element(By.CSS_SELECTOR, "td").text == HUAWEI_KEY
    assert "0x" not in browser.find_element(By.ID, "keys").text
    row.click()
    wait(browser, EC.text_to_be_present_in_element((By.ID, "value-format"), "bson"))
    assert json.loads(browser.find_element(By.ID, "value").text) == {"owner": "ann", "n": 7, "size": 7}
    assert browser.find_element(By.ID, "value-key").text == HUAWEI_KEY
    assert browser.find_element(By.ID, "value-ttl").text == "none"
    shot(browser, "dashboard-bson.png")


def test_the_internal_account_is_not_listed(gateway, browser, shot):
    with urllib.request.urlopen(gateway + "/_kvmux/api/containers", timeout=10) as r:
        listed = json.load(r)["containers"]
    assert "_kvmux" not in {c["account"] for c in listed}, listed
    assert "files" in {c["name"] for c in listed}
    browser.get(gateway + "/_kvmux/ui")
    wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, '.container-row[data-name="files"]')))
    accounts = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#containers .account")]
    assert "account dev" in accounts and not any("_kvmux" in a for a in accounts), accounts
    assert browser.find_elements(By.CSS_SELECTOR, '.container-row[data-name="objects"]') == []
    # Nor can it be browsed by id.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(gateway + "/_kvmux/api/items?container=2", timeout=10)
    assert refused.value.code == 404
    shot(browser, "dashboard-no-internal-account.png")


def test_a_refused_signature_shows_what_the_server_computed(gateway, browser, shot):
    refused = tencent(gateway, "EdgeKVGet", {"ZoneId": "zone-1", "Namespace": "orders", "Keys": ["greeting"]},
                      secret="not-the-secret")
    assert refused["Error"]["Code"] == "AuthFailure.SignatureFailure", refused

    browser.get(gateway + "/_kvmux/ui")
    browser.find_element(By.ID, "tab-requests").click()
    row = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, ".request-row.status-error")))
    # The newest request is first; a page load must not add requests of its own (no favicon).
    assert "EdgeKVGet" in row.text and "AuthFailure.SignatureFailure" in row.text, row.text
    assert "unclaimed" not in browser.find_element(By.ID, "requests").text
    row.click()
    wait(browser, EC.visibility_of_element_located((By.ID, "sig-canonical")))
    canonical = browser.find_element(By.ID, "sig-canonical").text
    assert canonical.startswith("POST\n/\n"), canonical
    assert "content-type:application/json" in canonical
    to_sign = browser.find_element(By.ID, "sig-string-to-sign").text
    assert to_sign.startswith("TC3-HMAC-SHA256\n"), to_sign
    assert browser.find_element(By.ID, "sig-key-id").text == SECRET_ID
    assert len(browser.find_element(By.ID, "sig-client").text) == 64
    sent = browser.find_element(By.ID, "sent-request").text
    assert sent.startswith("POST /"), sent
    assert "x-tc-action: EdgeKVGet" in sent
    assert SECRET not in browser.page_source and "not-the-secret" not in browser.page_source
    shot(browser, "dashboard-signature.png")


def test_a_fault_rule_added_in_the_dashboard_throttles_the_sdk(gateway, browser):
    browser.get(gateway + "/_kvmux/ui")
    browser.find_element(By.ID, "tab-faults").click()
    browser.find_element(By.ID, "fault-operation").send_keys("EdgeKVList")
    browser.find_element(By.CSS_SELECTOR, "#fault-form button[type=submit]").click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".fault-row")))
    reply = tencent(gateway, "EdgeKVList", {"ZoneId": "zone-1", "Namespace": "orders"})
    assert reply["Error"]["Code"] == "RequestLimitExceeded", reply
    # The Requests tab in live mode shows the throttled call without a reload.
    browser.find_element(By.ID, "tab-requests").click()
    browser.find_element(By.ID, "live").click()
    reply = tencent(gateway, "EdgeKVList", {"ZoneId": "zone-1", "Namespace": "orders"})
    assert reply["Error"]["Code"] == "RequestLimitExceeded", reply
    wait(browser, lambda d: len([r for r in d.find_elements(By.CSS_SELECTOR, ".request-row")
                                 if "RequestLimitExceeded" in r.text]) == 2)
    browser.find_element(By.ID, "tab-faults").click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".fault-row")))
    browser.find_element(By.ID, "clear-faults").click()
    wait(browser, lambda d: fault_rules(gateway) == [])
    wait(browser, EC.invisibility_of_element_located((By.CSS_SELECTOR, ".fault-row")))
    assert "Error" not in tencent(gateway, "EdgeKVList", {"ZoneId": "zone-1", "Namespace": "orders"})


def test_a_gateway_with_an_admin_token_asks_for_it_then_shows_the_data(locked_gateway, browser, shot):
    browser.get(locked_gateway + "/_kvmux/ui")
    box = wait(browser, EC.visibility_of_element_located((By.ID, "admin-token")))
    assert browser.find_elements(By.CSS_SELECTOR, ".container-row") == []
    box.send_keys(ADMIN_TOKEN, Keys.ENTER)
    # The page reloads with the token from sessionStorage and lists the seeded container.
    wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, '.container-row[data-name="files"]')))
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    # Writes from the page carry the token and the JSON type: a fault rule is added.
    browser.find_element(By.ID, "tab-faults").click()
    browser.find_element(By.ID, "fault-operation").send_keys("EdgeKVList")
    browser.find_element(By.CSS_SELECTOR, "#fault-form button[type=submit]").click()
    wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, ".fault-row")))
    shot(browser, "dashboard-token.png")


def test_the_latency_column_stays_visible_with_the_request_detail_open(gateway, browser, shot):
    tencent(gateway, "CreateEdgeKVNamespace", {"ZoneId": "zone-1", "Namespace": "timing"})  # may exist
    for _ in range(3):
        assert "Error" not in tencent(gateway, "EdgeKVList", {"ZoneId": "zone-1", "Namespace": "timing"})
    # Long cells (a refused signature's vendor code, a long operation name) are what used to push
    # the latency column out from under the detail pane.
    refused = tencent(gateway, "DescribeEdgeKVNamespaceQuota", {"ZoneId": "zone-1"}, secret="not-the-secret")
    assert refused["Error"]["Code"] == "AuthFailure.SignatureFailure", refused
    browser.get(gateway + "/_kvmux/ui")
    browser.find_element(By.ID, "tab-requests").click()
    row = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, ".request-row")))
    row.click()
    wait(browser, EC.visibility_of_element_located((By.ID, "request-detail")))
    # Every latency cell (and its header) is shown whole, inside the list's pane and left of the
    # detail pane, not cut off or covered.
    geometry = browser.execute_script("""
        const box = (e) => e.getBoundingClientRect();
        const list = box(document.getElementById("requests").closest(".pane"));
        const detail = box(document.getElementById("request-detail"));
        const cells = [...document.querySelectorAll("#requests tr > :last-child")];
        return { list, detail, viewport: window.innerWidth,
                 cells: cells.map((c) => ({ text: c.textContent, left: box(c).left, right: box(c).right,
                                            width: box(c).width, scroll: c.scrollWidth, client: c.clientWidth })) };
    """)
    cells = geometry["cells"]
    assert cells[0]["text"] == "latency", cells[0]
    assert len(cells) >= 4, cells
    for cell in cells:
        assert cell["width"] > 20, cell
        assert cell["right"] <= geometry["list"]["right"] + 0.5, (cell, geometry["list"])
        assert cell["right"] <= geometry["detail"]["left"], (cell, geometry["detail"])
        assert cell["right"] <= geometry["viewport"], cell
        assert cell["scroll"] <= cell["client"], f"latency cut off: {cell}"
    for cell in cells[1:]:
        assert cell["text"].endswith(" ms"), cell
    shot(browser, "dashboard-latency-with-detail.png")


def test_every_form_field_has_a_label(gateway, browser, shot):
    browser.get(gateway + "/_kvmux/ui")
    wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, '.container-row[data-name="files"]')))
    fields = browser.find_elements(By.CSS_SELECTOR, "input, select, textarea")
    assert len(fields) >= 10, len(fields)
    unlabelled = browser.execute_script("""
        return [...document.querySelectorAll("input, select, textarea")].filter((f) =>
            !(f.id && document.querySelector(`label[for="${CSS.escape(f.id)}"]`)) &&
            !(f.getAttribute("aria-label") || "").trim()
        ).map((f) => f.outerHTML);
    """)
    assert unlabelled == [], unlabelled
    # What assistive technology reads: every shown field has a non-empty accessible name.
    browser.find_element(By.ID, "tab-faults").click()
    wait(browser, EC.visibility_of_element_located((By.ID, "fault-form")))
    for view in ["tab-faults", "tab-requests", "tab-data"]:
        browser.find_element(By.ID, view).click()
        for field in browser.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
            if field.is_displayed():
                assert field.accessible_name.strip(), field.get_attribute("outerHTML")
        if view == "tab-faults":
            assert browser.find_element(By.CSS_SELECTOR, 'label[for="fault-operation"]').is_displayed()
            shot(browser, "dashboard-labels.png")
