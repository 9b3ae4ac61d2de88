#!/usr/bin/env python3
"""Minimal ClickHouse HTTP interface backed by an in-process chDB session.

Test-harness only (started by scripts/services.sh).  It speaks the subset of
the ClickHouse HTTP protocol that the Rust `clickhouse` crate (0.15.x) uses:

* ``GET /ping`` and ``GET /`` -> ``Ok.``
* ``POST /?database=..&default_format=..&<setting>=..`` with the SQL in the
  body, or as ``multipart/form-data`` with ``query`` and ``param_*`` fields
  (the crate switches to multipart whenever a query has bound parameters).
* ``POST /?query=INSERT INTO t(cols) FORMAT RowBinary[WithNamesAndTypes]&
  decompress=1`` with the rows in a (chunked) body, optionally framed in
  ClickHouse's native compressed blocks (CityHash128 checksum + LZ4/none).
  The rows are passed to chDB inline after ``FORMAT name\n`` (not through its
  streaming-insert API, which drops constraint-violating blocks silently), so
  every input format chDB knows works and every insert error is reported.
* Responses are chDB's bytes verbatim.  ``compress=1`` frames them in native
  LZ4 blocks; otherwise, like ClickHouse >= 25.10, the body is sent with
  ``Content-Encoding: lz4`` (LZ4 frame) / gzip / deflate when the client's
  ``Accept-Encoding`` asks for it and ``enable_http_compression`` is on.
* Errors: HTTP 4xx/5xx, ``X-ClickHouse-Exception-Code`` and a
  ``Code: N. DB::Exception: ...`` body, exactly as chDB produced it.

All chDB calls go through one lock: the session is shared, so the per-request
``USE <database>`` and ``SET`` settings are applied and undone under it.

Usage: chdb_http.py --data DIR [--host 127.0.0.1] [--port 8123]
"""

import argparse
import gzip
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import lz4.block
import lz4.frame

# ---------------------------------------------------------------------------
# CityHash128 v1.0.2 (the variant ClickHouse uses for compressed-block
# checksums).  Pure Python; ~25 ms per 256 KiB, plenty for a test server.
# Verified against ClickHouse's C implementation and the clickhouse crate's
# `it_compresses` test vector.
# ---------------------------------------------------------------------------
M64 = 0xFFFFFFFFFFFFFFFF
K0 = 0xC3A5C85C97CB3127
K1 = 0xB492B66FBE98F273
K2 = 0x9AE16A3B2F90404F
K3 = 0xC949D7C7509E6557
KMUL = 0x9DDFEA08EB382D69


def _f64(s, i):
    return int.from_bytes(s[i:i + 8], "little")


def _f32(s, i):
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v, shift):
    return v if shift == 0 else ((v >> shift) | (v << (64 - shift))) & M64


def _smix(v):
    return v ^ (v >> 47)


def _h16(u, v):
    a = ((u ^ v) * KMUL) & M64
    a ^= a >> 47
    b = ((v ^ a) * KMUL) & M64
    b ^= b >> 47
    return (b * KMUL) & M64


def _len0to16(s, off, n):
    if n > 8:
        a = _f64(s, off)
        b = _f64(s, off + n - 8)
        return _h16(a, _rot((b + n) & M64, n)) ^ b
    if n >= 4:
        a = _f32(s, off)
        return _h16((n + (a << 3)) & M64, _f32(s, off + n - 4))
    if n > 0:
        a, b, c = s[off], s[off + (n >> 1)], s[off + n - 1]
        y = a + (b << 8)
        z = n + (c << 2)
        return (_smix(((y * K2) ^ (z * K3)) & M64) * K2) & M64
    return K2


def _weak32(s, i, a, b):
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & M64
    b = _rot((b + a + z) & M64, 21)
    c = a
    a = (a + x + y) & M64
    b = (b + _rot(a, 44)) & M64
    return (a + z) & M64, (b + c) & M64


def _murmur(s, off, n, lo, hi):
    a, b, c, d = lo, hi, 0, 0
    rest = n - 16
    if rest <= 0:
        a = (_smix((a * K1) & M64) * K1) & M64
        c = (b * K1 + _len0to16(s, off, n)) & M64
        d = _smix((a + (_f64(s, off) if n >= 8 else c)) & M64)
    else:
        c = _h16((_f64(s, off + n - 8) + K1) & M64, a)
        d = _h16((b + n) & M64, (c + _f64(s, off + n - 16)) & M64)
        a = (a + d) & M64
        while True:
            a ^= (_smix((_f64(s, off) * K1) & M64) * K1) & M64
            a = (a * K1) & M64
            b ^= a
            c ^= (_smix((_f64(s, off + 8) * K1) & M64) * K1) & M64
            c = (c * K1) & M64
            d ^= c
            off += 16
            rest -= 16
            if rest <= 0:
                break
    a = _h16(a, c)
    b = _h16(d, b)
    return a ^ b, _h16(b, a)


def _with_seed(s, off, n, lo, hi):
    if n < 128:
        return _murmur(s, off, n, lo, hi)
    x, y = lo, hi
    z = (n * K1) & M64
    v0 = (_rot(y ^ K1, 49) * K1 + _f64(s, off)) & M64
    v1 = (_rot(v0, 42) * K1 + _f64(s, off + 8)) & M64
    w0 = (_rot((y + z) & M64, 35) * K1 + x) & M64
    w1 = (_rot((x + _f64(s, off + 88)) & M64, 53) * K1) & M64
    while True:
        for _ in range(2):
            x = (_rot((x + y + v0 + _f64(s, off + 16)) & M64, 37) * K1) & M64
            y = (_rot((y + v1 + _f64(s, off + 48)) & M64, 42) * K1) & M64
            x ^= w1
            y ^= v0
            z = _rot(z ^ w0, 33)
            v0, v1 = _weak32(s, off, (v1 * K1) & M64, (x + w0) & M64)
            w0, w1 = _weak32(s, off + 32, (z + w1) & M64, y)
            z, x = x, z
            off += 64
        n -= 128
        if n < 128:
            break
    y = (y + _rot(w0, 37) * K0 + z) & M64
    x = (x + _rot((v0 + z) & M64, 49) * K0) & M64
    done = 0
    while done < n:
        done += 32
        y = (_rot((y - x) & M64, 42) * K0 + v1) & M64
        w0 = (w0 + _f64(s, off + n - done + 16)) & M64
        x = (_rot(x, 49) * K0 + w0) & M64
        w0 = (w0 + v0) & M64
        v0, v1 = _weak32(s, off + n - done, v0, v1)
    x = _h16(x, v0)
    y = _h16(y, w0)
    return ((_h16((x + v1) & M64, w1) + y) & M64,
            _h16((x + w1) & M64, (y + v1) & M64))


def cityhash128(data):
    """CityHash128 v1.0.2 of `data`; returns (low64, high64)."""
    s = bytes(data)
    n = len(s)
    if n >= 16:
        return _with_seed(s, 16, n - 16, _f64(s, 0) ^ K3, _f64(s, 8))
    if n >= 8:
        return _with_seed(b"", 0, 0, _f64(s, 0) ^ ((n * K0) & M64),
                          _f64(s, n - 8) ^ K1)
    return _with_seed(s, 0, n, K0, K1)


def block_checksum(header_and_data):
    lo, hi = cityhash128(header_and_data)
    return lo.to_bytes(8, "little") + hi.to_bytes(8, "little")


# ---------------------------------------------------------------------------
# ClickHouse native compressed-block framing (compress=1 / decompress=1)
# ---------------------------------------------------------------------------
METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90


class ClickHouseError(Exception):
    """An error to report to the client as `Code: N. DB::Exception: ...`."""

    def __init__(self, code, message, name="", status=None):
        super().__init__(message)
        self.code = code
        self.name = name
        self.status = status

    def body(self):
        suffix = f" ({self.name})" if self.name else ""
        return f"Code: {self.code}. DB::Exception: {self}{suffix}"


def compress_native(data, block_size=1 << 20):
    """Frame `data` as ClickHouse native LZ4 blocks (what compress=1 returns)."""
    out = bytearray()
    for start in range(0, max(len(data), 1), block_size):
        chunk = data[start:start + block_size]
        if not chunk and out:
            break
        payload = lz4.block.compress(bytes(chunk), store_size=False)
        header = bytes([METHOD_LZ4]) + (9 + len(payload)).to_bytes(4, "little") \
            + len(chunk).to_bytes(4, "little")
        out += block_checksum(header + payload) + header + payload
    return bytes(out)


def decompress_native(buf, verify=True):
    """Decode a stream of ClickHouse native compressed blocks (decompress=1)."""
    out = bytearray()
    off, n = 0, len(buf)
    while off < n:
        if n - off < 25:
            raise ClickHouseError(33, f"Cannot read all data: truncated compressed block header "
                                  f"({n - off} bytes left)", "CANNOT_READ_ALL_DATA")
        checksum = bytes(buf[off:off + 16])
        method = buf[off + 16]
        csize = int.from_bytes(buf[off + 17:off + 21], "little")
        dsize = int.from_bytes(buf[off + 21:off + 25], "little")
        if csize < 9 or off + 16 + csize > n:
            raise ClickHouseError(33, f"Cannot read all data: compressed block claims {csize} "
                                  f"bytes, {n - off - 16} available", "CANNOT_READ_ALL_DATA")
        framed = bytes(buf[off + 16:off + 16 + csize])
        if verify:
            actual = block_checksum(framed)
            if actual != checksum:
                raise ClickHouseError(
                    40, "Checksum doesn't match: corrupted data. Reference: "
                    f"{checksum.hex()}. Actual: {actual.hex()}. Size of compressed block: {csize}",
                    "CHECKSUM_DOESNT_MATCH")
        payload = framed[9:]
        if method == METHOD_LZ4:
            try:
                out += lz4.block.decompress(payload, uncompressed_size=dsize)
            except Exception as exc:  # lz4.block.LZ4BlockError
                raise ClickHouseError(271, f"Cannot decompress LZ4 block: {exc}",
                                      "CANNOT_DECOMPRESS") from None
        elif method == METHOD_NONE:
            out += payload
        elif method == METHOD_ZSTD:
            raise ClickHouseError(48, "ZSTD-compressed blocks are not supported by this test "
                                  "server; use Compression::Lz4 or None", "NOT_IMPLEMENTED")
        else:
            raise ClickHouseError(89, f"Unknown codec family code: 0x{method:02x}",
                                  "UNKNOWN_COMPRESSION_METHOD")
        off += 16 + csize
    return bytes(out)


# ---------------------------------------------------------------------------
# Small SQL helpers (enough to route INSERT ... FORMAT and find FORMAT names)
# ---------------------------------------------------------------------------
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def _skip_ws_comments(buf, i):
    n = len(buf)
    while i < n:
        c = buf[i:i + 1]
        if c.isspace():
            i += 1
        elif buf.startswith(b"--", i) or buf.startswith(b"#", i):
            j = buf.find(b"\n", i)
            i = n if j < 0 else j + 1
        elif buf.startswith(b"/*", i):
            j = buf.find(b"*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            break
    return i


def _skip_quoted(buf, i):
    quote = buf[i]
    i += 1
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == 0x5C:  # backslash escape
            i += 2
            continue
        if c == quote:
            if i + 1 < n and buf[i + 1] == quote:  # doubled quote
                i += 2
                continue
            return i + 1
        i += 1
    return n


def first_keyword(buf):
    i = _skip_ws_comments(buf, 0)
    while buf[i:i + 1] == b"(":  # e.g. "(SELECT 1)"
        i = _skip_ws_comments(buf, i + 1)
    m = _IDENT.match(buf, i)
    return m.group(0).decode().upper() if m else ""


def split_insert(buf):
    """For `INSERT ... FORMAT name<data>` return (head_sql, format, data), else None.

    Scans top-level tokens only (skips strings, quoted identifiers, comments and
    parenthesised column lists), so binary row data after the format name is
    never interpreted.  `INSERT ... VALUES` / `INSERT ... SELECT` return None
    and are run as ordinary queries.
    """
    if first_keyword(buf) != "INSERT":
        return None
    i, n, depth = 0, len(buf), 0
    while True:
        i = _skip_ws_comments(buf, i)
        if i >= n:
            return None
        c = buf[i]
        if c in b"'\"`":
            i = _skip_quoted(buf, i)
        elif c == 0x28:
            depth += 1
            i += 1
        elif c == 0x29:
            depth -= 1
            i += 1
        else:
            m = _IDENT.match(buf, i)
            if not m:
                i += 1
                continue
            word = m.group(0).upper()
            if depth == 0 and word in (b"VALUES", b"SELECT", b"WITH"):
                return None
            if depth == 0 and word == b"FORMAT":
                j = i + len(word)
                k = j
                while k < n and buf[k:k + 1] in (b" ", b"\t", b"\n", b"\r", b"\f"):
                    k += 1
                fm = _IDENT.match(buf, k)
                if k > j and fm:
                    d = fm.end()
                    # ClickHouse: data starts after spaces/tabs and one optional (\r)\n.
                    while d < n and buf[d:d + 1] in (b" ", b"\t", b"\f"):
                        d += 1
                    if buf[d:d + 1] == b"\r":
                        d += 1
                    if buf[d:d + 1] == b"\n":
                        d += 1
                    head = buf[:i].decode("utf-8").rstrip()
                    return head, fm.group(0).decode(), buf[d:]
            i = m.end()


_INSERT_SETTINGS = re.compile(r"\sSETTINGS\s", re.IGNORECASE)

_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:SETTINGS\b.*)?;?\s*$",
                              re.IGNORECASE | re.DOTALL)


def quote_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(value):
    return "`" + value.replace("\\", "\\\\").replace("`", "\\`") + "`"


def content_type_for(fmt):
    f = fmt.lower()
    if f.startswith("json") and "eachrow" not in f and "lines" not in f:
        return "application/json; charset=UTF-8"
    if "eachrow" in f or f in ("jsonlines", "ndjson"):
        return "application/x-ndjson; charset=UTF-8"
    if f.startswith("tabseparated") or f.startswith("tsv"):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if f.startswith("pretty") or f in ("values", "vertical", "markdown", "xml"):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


# HTTP status per exception code, after ClickHouse's exceptionCodeToHTTPStatus.
_STATUS_BY_CODE = {}
for _c in (6, 25, 26, 27, 38, 41, 53, 62, 69, 72, 117, 167, 168, 169, 321, 441, 456, 457):
    _STATUS_BY_CODE[_c] = 400  # parse errors, syntax errors, bad query parameters
for _c in (46, 47, 50, 56, 60, 63, 73, 81, 115):
    _STATUS_BY_CODE[_c] = 404  # unknown table / database / function / setting / format
_STATUS_BY_CODE[48] = 501  # NOT_IMPLEMENTED
_STATUS_BY_CODE[164] = 403  # READONLY
_STATUS_BY_CODE[159] = 504  # TIMEOUT_EXCEEDED

_CODE_RE = re.compile(r"Code: (\d+)\. (.*)", re.DOTALL)
_NAME_RE = re.compile(r"\(([A-Z_0-9]+)\)(?: \(version [^)]*\))?\s*$")


def error_from_exception(exc):
    """Turn a chDB exception into (status, code, body)."""
    if isinstance(exc, ClickHouseError):
        return exc.status or _STATUS_BY_CODE.get(exc.code, 500), exc.code, exc.body()
    text = str(exc).strip()
    m = _CODE_RE.search(text)
    if m:
        code = int(m.group(1))
        body = f"Code: {code}. {m.group(2).strip()}"
    else:
        code = 1001  # STD_EXCEPTION
        body = f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)"
    return _STATUS_BY_CODE.get(code, 500), code, body


# ---------------------------------------------------------------------------
# chDB engine wrapper
# ---------------------------------------------------------------------------
# URL parameters that belong to the HTTP interface / client, not to settings.
HTTP_ONLY_PARAMS = {
    "query", "database", "default_format", "compress", "decompress", "query_id",
    "session_id", "session_timeout", "session_check", "close_session", "user", "password",
    "quota_key", "role", "default_role", "buffer_size", "wait_end_of_query", "stacktrace",
    "client_protocol_version", "with_stacktrace", "_",
}

# chDB defaults that differ from a ClickHouse server; reset so tests see server behaviour.
SERVER_PARITY_SETTINGS = {
    "date_time_input_format": "basic",
    "async_insert": "0",
    "implicit_select": "0",
}


class Engine:
    def __init__(self, data_dir, server_defaults=True):
        from chdb import session as chdb_session
        self.session = chdb_session.Session(data_dir)
        self.conn = self.session._conn  # chdb.state.sqlitelike.Connection
        self.lock = threading.Lock()
        if server_defaults:
            for name, value in SERVER_PARITY_SETTINGS.items():
                try:
                    self.conn.query(f"SET {name} = {quote_string(value)}")
                except Exception as exc:  # setting unknown in this chDB build
                    log(f"note: cannot set {name}={value}: {exc}")
        self.baseline = self._settings_snapshot(changed_only=False)
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()") or "UTC"

    def _scalar(self, sql):
        try:
            return self.conn.query(sql, "TabSeparatedRaw").bytes().decode().strip()
        except Exception:
            return ""

    def _settings_snapshot(self, changed_only):
        where = " WHERE changed" if changed_only else ""
        raw = self.conn.query(f"SELECT name, value FROM system.settings{where}",
                              "JSONCompactEachRow").bytes().decode()
        return dict(json.loads(line) for line in raw.splitlines() if line)

    def close(self):
        with self.lock:
            try:
                self.session.close()
            except Exception:
                pass

    def http_compression_enabled(self, settings):
        value = settings.get("enable_http_compression",
                             self.baseline.get("enable_http_compression", "1"))
        return str(value).strip().lower() in ("1", "true")

    def execute(self, database, sql_bytes, default_format, params, settings):
        """Run one statement; returns (body, output_format, summary, start_time)."""
        started = time.monotonic()
        unknown = [k for k in settings if k not in self.baseline]
        if unknown:
            raise ClickHouseError(115, f"Unknown setting '{unknown[0]}'", "UNKNOWN_SETTING")
        insert = split_insert(sql_bytes)
        keyword = first_keyword(sql_bytes)
        with self.lock:
            touched = []
            try:
                # The session is shared: select this request's database every time.
                self.conn.query(f"USE {quote_ident(database)}")
                for name, value in settings.items():
                    if self.baseline.get(name) != value:
                        touched.append(name)
                        self.conn.query(f"SET {name} = {quote_string(value)}")
                if insert is not None:
                    # chDB's streaming-insert API (send_insert) silently drops a block that fails a
                    # CHECK constraint (seen with chdb-core 26.9) while reporting it written, and rows
                    # inline in the query text are cut short by a "\n\n" inside binary data (a UInt16
                    # of 2570), so the rows go through a file, which reports every error as ClickHouse
                    # would and reads the bytes as they are.
                    head, fmt, data = insert
                    fd, path = tempfile.mkstemp(prefix="insert-", suffix=".bin")
                    try:
                        with os.fdopen(fd, "wb") as f:
                            f.write(data)
                        infile = f" FROM INFILE {quote_string(path)}"
                        cut = _INSERT_SETTINGS.search(head)  # INFILE goes before a SETTINGS clause
                        at = cut.start() if cut else len(head)
                        query = f"{head[:at]}{infile}{head[at:]} FORMAT {fmt}"
                        res = self.conn._conn.query(query, default_format, params=params)
                    finally:
                        os.unlink(path)
                    summary = {"written_rows": res.rows_written(), "written_bytes": res.bytes_written()}
                    return b"", default_format, summary, started
                try:
                    sql = sql_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ClickHouseError(62, f"Query is not valid UTF-8: {exc}", "SYNTAX_ERROR")
                if not sql.strip():
                    raise ClickHouseError(62, "Empty query", "SYNTAX_ERROR", status=400)
                m = _TRAILING_FORMAT.search(sql)
                fmt = m.group(1) if m else default_format
                res = self.conn._conn.query(sql, default_format, params=params)
                summary = {
                    "read_rows": res.rows_read(), "read_bytes": res.bytes_read(),
                    "written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
                }
                return res.bytes(), fmt, summary, started
            finally:
                if keyword == "SET":  # plain SET must not leak into later requests
                    for name, value in self._settings_snapshot(changed_only=True).items():
                        if (self.baseline.get(name) != value and name not in touched
                                and name != "database"):
                            touched.append(name)
                for name in touched:
                    try:
                        self.conn.query(f"SET {name} = {quote_string(self.baseline[name])}")
                    except Exception as exc:
                        log(f"warning: could not restore setting {name}: {exc}")


# ---------------------------------------------------------------------------
# HTTP layer
# ---------------------------------------------------------------------------
def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} chdb-http: {msg}\n")
    sys.stderr.flush()


class BadRequest(Exception):
    pass


def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise BadRequest("multipart/form-data without boundary")
    delim = b"--" + m.group(1).encode()
    fields = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        nm = re.search(rb'name="([^"]*)"', head)
        if nm:
            fields[nm.group(1).decode()] = value
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    sys_version = ""
    engine = None  # set in main()

    # -- plumbing ----------------------------------------------------------
    def version_string(self):
        return "chdb-http"

    def log_message(self, fmt, *args):  # silence default access log; we log ourselves
        pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise BadRequest("connection closed inside chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                data = self.rfile.read(size)
                if len(data) != size:
                    raise BadRequest("connection closed inside chunk")
                chunks.append(data)
                self.rfile.readline(3)  # CRLF after chunk
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) != length:
            raise BadRequest("connection closed inside body")
        return data

    def send(self, status, body, headers=None, content_type="text/plain; charset=UTF-8"):
        try:
            self._send(status, body, headers, content_type)
        except OSError as exc:  # client went away (e.g. an aborted INSERT)
            self.close_connection = True
            log(f"client {self.client_address[0]}:{self.client_address[1]} gone: {exc}")

    def _send(self, status, body, headers, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Server-Display-Name", "chdb-http")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_response(self, status, code, message, query_id=None):
        headers = {"X-ClickHouse-Exception-Code": str(code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self.send(status, (message.rstrip() + "\n").encode("utf-8", "replace"), headers)

    # -- verbs -------------------------------------------------------------
    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.handle_request(is_post=False)

    def do_POST(self):
        self.handle_request(is_post=True)

    def handle_request(self, is_post):
        started = time.monotonic()
        url = urlsplit(self.path)
        try:
            body = self.read_body() if is_post or self.headers.get("Content-Length") \
                or self.headers.get("Transfer-Encoding") else b""
        except (BadRequest, ValueError) as exc:
            self.close_connection = True
            self.send_error_response(400, 1001, f"Code: 1001. DB::Exception: bad request body: {exc}")
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        path = url.path.rstrip("/") or "/"
        if path in ("/ping", "/replicas_status") or (path == "/" and not is_post
                                                     and "query" not in params):
            self.send(200, b"Ok.\n", content_type="text/html; charset=UTF-8")
            self.access_log(started, 200, "ping", path)
            return
        if path != "/":
            self.send_error_response(404, 1001, f"There is no handle {url.path}")
            self.access_log(started, 404, "-", path)
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        status, sql_for_log = 200, ""
        try:
            sql_bytes, qparams, settings = self.assemble(params, body)
            insert = split_insert(sql_bytes)
            if insert:  # never log row data
                sql_for_log = f"{insert[0][:160]} FORMAT {insert[1]} <{len(insert[2])} bytes>"
            else:
                sql_for_log = sql_bytes[:200].decode("utf-8", "replace")
            default_format = params.get("default_format") or "TabSeparated"
            database = params.get("database") or self.headers.get("X-ClickHouse-Database") \
                or "default"
            result, fmt, summary, t0 = self.engine.execute(
                database, sql_bytes, default_format, qparams, settings)
            summary = {k: str(v) for k, v in summary.items()}
            summary.update(result_bytes=str(len(result)),
                           elapsed_ns=str(int((time.monotonic() - t0) * 1e9)))
            headers = {
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Timezone": self.engine.timezone,
                "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
            }
            result = self.encode_response(result, params, settings, headers)
            self.send(200, result, headers, content_type_for(fmt))
        except Exception as exc:  # report as ClickHouse does
            status, code, message = error_from_exception(exc)
            self.send_error_response(status, code, message, query_id)
            sql_for_log += f" !! {message[:300]}"
        self.access_log(started, status, params.get("database", "default"), sql_for_log)

    def assemble(self, params, body):
        """Build the SQL (+inline data), query parameters and settings of a request."""
        decompress = params.get("decompress", "0") in ("1", "true")
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        if enc in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        elif enc == "lz4":
            body = lz4.frame.decompress(body)
        elif enc not in ("", "identity"):
            raise ClickHouseError(48, f"Unsupported Content-Encoding: {enc}", "NOT_IMPLEMENTED")
        ctype = self.headers.get("Content-Type", "")
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        query = params.get("query", "").encode("utf-8")
        if ctype.lower().startswith("multipart/form-data"):
            fields = parse_multipart(body, ctype)
            body = b""
            for name, value in fields.items():
                if name.startswith("param_"):
                    qparams[name[6:]] = value.decode("utf-8")
                elif name == "query":
                    query = (query + b"\n" + value) if query else value
                # other fields would be external tables: not supported, ignored
        elif decompress and body:
            body = decompress_native(body, verify=params.get(
                "http_native_compression_disable_checksumming_on_decompress", "0")
                not in ("1", "true"))
        # ClickHouse: the `query` parameter, a line feed, then the POST body.
        sql_bytes = (query + b"\n" + body) if query else body
        settings = {k: v for k, v in params.items()
                    if k not in HTTP_ONLY_PARAMS and not k.startswith("param_")}
        return sql_bytes, qparams, settings

    def encode_response(self, result, params, settings, headers):
        if params.get("compress", "0") in ("1", "true"):
            return compress_native(result)
        if not self.engine.http_compression_enabled(settings):
            return result
        accept = [a.split(";")[0].strip().lower()
                  for a in self.headers.get("Accept-Encoding", "").split(",")]
        if "lz4" in accept:
            headers["Content-Encoding"] = "lz4"
            # Same frame preferences as ClickHouse's Lz4DeflatingWriteBuffer.
            return lz4.frame.compress(result, block_size=lz4.frame.BLOCKSIZE_MAX256KB,
                                      block_linked=True, content_checksum=False,
                                      store_size=False)
        if "gzip" in accept:
            headers["Content-Encoding"] = "gzip"
            return gzip.compress(result, compresslevel=3)
        if "deflate" in accept:
            headers["Content-Encoding"] = "deflate"
            return zlib.compress(result, 3)
        return result

    def access_log(self, started, status, db, what):
        ms = (time.monotonic() - started) * 1000
        what = " ".join(what.split())  # one line; never includes credentials
        log(f'{self.client_address[0]} {self.command} {status} {ms:.1f}ms db={db} "{what}"')


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="chDB data directory (persistent)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--chdb-defaults", action="store_true",
                    help="keep chDB's own setting defaults instead of server-like ones "
                         "(date_time_input_format=basic, async_insert=0, implicit_select=0)")
    args = ap.parse_args(argv)

    Handler.engine = Engine(args.data, server_defaults=not args.chdb_defaults)
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file, "w") as fh:
            fh.write(f"{port}\n")
    log(f"chDB {Handler.engine.version} data={args.data} listening on http://{args.host}:{port}")

    def stop(signum, _frame):
        log(f"signal {signum}: shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        Handler.engine.close()
        log("stopped")


if __name__ == "__main__":
    main()
