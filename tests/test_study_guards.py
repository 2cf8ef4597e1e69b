"""Issue 24 without a server (fast tier): fixed-length study PNGs, signed device cookies, the device-aware throttle
and the admin's unlock, same-origin checks of form posts, script nonces, the request-size cap, the proxy setting."""
from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from legend_demo.core import settings
from legend_demo.study import devices
from legend_demo.study.db import connect
from legend_demo.study.images import png_bytes, png_chunk_types, png_length, stored_zlib, stored_zlib_length
from legend_demo.study.throttle import ThrottlePolicy, begin_attempt, finish_attempt, retry_after, account_key, unlock_name
from legend_demo.ui.study_guards import BodyLimit, add_nonce, cross_site_reason, own_origin

FAST = ThrottlePolicy(pair_limit=3, client_limit=6, account_limit=8, base_lock_s=10, max_lock_s=40)


# -- blinding by payload size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (820, 768), (300, 65536)])
def test_a_study_png_has_one_length_per_pixel_size_whatever_it_shows(shape):
    rng = np.random.default_rng(0)
    smooth = np.tile(np.linspace(0, 255, shape[1]).astype(np.uint8), (shape[0], 1))  # compresses to almost nothing
    noise = rng.integers(0, 256, shape, dtype=np.uint8)  # does not compress at all
    flat = np.zeros(shape, np.uint8)
    pngs = [png_bytes(image) for image in (smooth, noise, flat)]
    assert {len(p) for p in pngs} == {png_length(shape[1], shape[0])}
    for png, image in zip(pngs, (smooth, noise, flat)):
        assert png_chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), image)  # a valid PNG, lossless


def test_the_stored_zlib_stream_is_valid_and_its_length_is_known():
    import zlib

    for size in (0, 1, 65535, 65536, 200_000):
        data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        stream = stored_zlib(data)
        assert zlib.decompress(stream) == data and len(stream) == stored_zlib_length(size)


# -- signed device cookies --------------------------------------------------------------------------------------
@pytest.fixture()
def conn(tmp_path):
    connection = connect(tmp_path / "t.db", create=True)  # the schema alone: login_attempts, server_keys, …
    yield connection
    connection.close()


def test_device_cookies_verify_only_with_the_studys_key(conn, tmp_path):
    key = devices.device_key(conn)
    assert devices.device_key(conn) == key and len(key) == 32  # made once, then kept
    cookie = devices.new_device_cookie(key)
    device = devices.device_of(key, cookie)
    assert device is not None and len(device) == 64 and cookie.split(".")[0] not in device
    device_id, signature = cookie.split(".")
    other = connect(tmp_path / "other.db", create=True)
    flipped = signature[:-1] + ("B" if signature.endswith("A") else "A")
    forged = [None, "", "x", device_id, f"{device_id}.", f"{device_id}.{flipped}", f"other.{signature}",
              devices.new_device_cookie(devices.device_key(other)), cookie + ".x", "a" * 500]
    other.close()
    assert all(devices.device_of(key, value) is None for value in forged)


# -- the device-aware throttle ------------------------------------------------------------------------------------
def _fail(conn, name, client, device=None, now=100.0):
    attempt, wait = begin_attempt(conn, name, client, FAST, now=now, device=device)
    if attempt is not None:
        finish_attempt(conn, attempt, None, False, client, "test")
    return wait


def _ok(conn, name, client, device=None, now=50.0):
    attempt, _ = begin_attempt(conn, name, client, FAST, now=now, device=device)
    finish_attempt(conn, attempt, None, True, client, "test")  # reader_id: none in this bare schema


def test_a_forged_address_earns_no_exemption_but_a_known_device_does(conn):
    _ok(conn, "erin", "198.51.100.7", device="erins-laptop")
    for attacker in range(3):  # 3 addresses × 3 failures = 9 ≥ the per-name limit of 8
        for _ in range(3):
            _fail(conn, "erin", f"203.0.113.{attacker}")
    key = account_key("erin")
    assert retry_after(conn, key, "198.51.100.7", FAST, now=101.0) > 0  # her old address, forged: locked
    assert retry_after(conn, key, "192.0.2.1", FAST, now=101.0, device="stolen-guess") > 0  # an unknown device
    assert retry_after(conn, key, "192.0.2.1", FAST, now=101.0, device="erins-laptop") == 0  # her browser: in


def test_a_known_device_is_limited_per_device_and_spared_a_shared_addresss_lock(conn):
    _ok(conn, "alice", "10.0.0.1", device="alices-pc")
    for _ in range(3):
        _fail(conn, "alice", "10.0.0.1")  # someone behind the same NAT guesses alice's password
    key = account_key("alice")
    assert retry_after(conn, key, "10.0.0.1", FAST, now=101.0) > 0  # that pair is locked …
    assert retry_after(conn, key, "10.0.0.1", FAST, now=101.0, device="alices-pc") == 0  # … alice's browser is not
    for _ in range(3):
        _fail(conn, "alice", "10.0.0.1", device="alices-pc")
    assert retry_after(conn, key, "10.0.0.1", FAST, now=101.0, device="alices-pc") > 0  # a known device: 3 guesses too
    assert retry_after(conn, account_key("bob"), "10.0.0.2", FAST, now=101.0, device="alices-pc") == 0  # not bob's lock


def test_the_admin_unlocks_a_name_at_once(conn):
    for attacker in range(3):
        for _ in range(3):
            _fail(conn, "carol", f"203.0.113.{attacker}")
    key = account_key("carol")
    assert retry_after(conn, key, "192.0.2.9", FAST, now=101.0) > 0  # every new device waits
    assert unlock_name(conn, " Carol ", now=101.0, policy=FAST) == 8  # the 9th was refused unchecked
    assert retry_after(conn, key, "192.0.2.9", FAST, now=101.0) == 0
    assert retry_after(conn, key, "203.0.113.0", FAST, now=101.0) == 0  # its pair locks go too
    for _ in range(3):
        _fail(conn, "carol", "203.0.113.0", now=102.0)
    assert retry_after(conn, key, "203.0.113.0", FAST, now=103.0) > 0  # new failures count again
    assert unlock_name(conn, "nobody", now=104.0, policy=FAST) == 0


# -- same-origin form posts ------------------------------------------------------------------------------------
ORIGIN = own_origin("http", "127.0.0.1:7860")


@pytest.mark.parametrize("headers, refused", [
    ({}, False),  # a program (curl, gradio_client): no browser, no victim
    ({"sec-fetch-site": "same-origin", "origin": ORIGIN}, False),
    ({"sec-fetch-site": "none"}, False),
    ({"origin": "http://127.0.0.1:7860"}, False),  # a browser without Fetch Metadata
    ({"origin": "HTTP://127.0.0.1:7860/"}, False),
    ({"referer": "http://127.0.0.1:7860/login?bye=1"}, False),
    ({"sec-fetch-site": "cross-site", "origin": "http://evil.test"}, True),
    ({"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:9999"}, True),  # another port: another origin
    ({"sec-fetch-site": "cross-site", "origin": ORIGIN}, True),  # the browser's word wins over a copied Origin
    ({"origin": "http://evil.test"}, True),
    ({"origin": "null"}, True),  # a sandboxed frame or a data: page
    ({"origin": "https://127.0.0.1:7860"}, True),
    ({"referer": "http://evil.test/attack.html"}, True),
    ({"referer": "http://127.0.0.1:7860.evil.test/"}, True),
])
def test_cross_site_posts_are_told_from_same_origin_ones(headers, refused):
    assert (cross_site_reason(headers, ORIGIN) is not None) == refused


def test_every_script_tag_of_a_page_gets_the_nonce():
    page = (b'<html><head><script>window.x = 1;</script><SCRIPT type="module" src="./a.js"></SCRIPT>'
            b'<link rel="modulepreload" href="./b.js"><link rel="stylesheet" href="./c.css"><scripts></scripts>'
            b'</head><body><noscript>no</noscript></body></html>')
    marked = add_nonce(page, "abc")
    assert marked.count(b'nonce="abc"') == 3
    assert b'<script nonce="abc">' in marked and b'<SCRIPT nonce="abc" type' in marked
    assert b'<link nonce="abc" rel="modulepreload"' in marked and b'<scripts>' in marked


def test_oversized_gradio_requests_are_refused_before_the_app_reads_them():
    reached = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def call(path, chunks, declared=None):
        sent, pending = [], list(chunks)

        async def receive():
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}

        async def send(message):
            sent.append(message)

        headers = [(b"content-length", str(declared).encode())] if declared is not None else []
        asyncio.run(BodyLimit(app, "/gradio_api", limit=100)({"type": "http", "path": path, "headers": headers},
                                                               receive, send))
        return sent[0]["status"]

    assert call("/gradio_api/queue/join", [b"x" * 50], declared=50) == 200
    assert call("/gradio_api/queue/join", [b"x" * 500], declared=500) == 413
    assert call("/gradio_api/queue/join", [b"x" * 60, b"x" * 60]) == 413  # chunked, no length given
    assert call("/login", [b"x" * 500], declared=500) == 200  # only Gradio's routes are capped
    assert reached == ["/gradio_api/queue/join", "/login"]


def test_trusted_proxies_are_addresses_or_networks():
    name = "LEGEND_STUDY_TRUSTED_PROXIES"
    assert settings.get(name, {}) is None
    assert settings.get(name, {name: "127.0.0.1, 10.0.0.0/8,::1"}) == ("127.0.0.1", "10.0.0.0/8", "::1")
    for bad in ("*", "proxy.local", "10.0.0.0/33"):
        with pytest.raises(ValueError, match=name):
            settings.get(name, {name: bad})
