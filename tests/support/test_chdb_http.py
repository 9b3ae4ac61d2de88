#!/usr/bin/env python3
"""Self-test for tests/support/chdb_http.py (the chDB-backed ClickHouse HTTP front end).

Starts the server on a free loopback port with a temporary data directory and
talks to it the way the Rust `clickhouse` crate does: RowBinary /
RowBinaryWithNamesAndTypes inserts (plain and native-LZ4 `decompress=1`,
chunked), multipart `param_*` queries, `Accept-Encoding: lz4` responses,
settings in the URL, error headers.

Run with the services venv python (it needs chdb-core and lz4):
    ~/.cache/sentra-services/venv/bin/python tests/support/test_chdb_http.py
"""

import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from urllib.parse import urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chdb_http  # noqa: E402  (same directory; gives us cityhash128 and the block codec)
import lz4.block  # noqa: E402
import lz4.frame  # noqa: E402

SERVER = os.path.join(HERE, "chdb_http.py")
PYTHON = os.environ.get("CHDB_HTTP_PYTHON", sys.executable)

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS sentra_test.events (
    id UInt64,
    name String,
    source LowCardinality(String),
    ts DateTime64(6, 'UTC'),
    score Nullable(UInt32),
    port UInt16,
    count32 UInt32,
    ratio Float64,
    tags Array(String),
    flagged Bool,
    flag8 UInt8,
    attrs Map(String, String)
) ENGINE = MergeTree ORDER BY (id)
"""
COLUMNS = ["id", "name", "source", "ts", "score", "port", "count32", "ratio", "tags",
           "flagged", "flag8", "attrs"]
TYPES = ["UInt64", "String", "LowCardinality(String)", "DateTime64(6, 'UTC')",
         "Nullable(UInt32)", "UInt16", "UInt32", "Float64", "Array(String)", "Bool", "UInt8",
         "Map(String, String)"]


# --------------------------------------------------------------------------- RowBinary codec
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def encode_row(r):
    out = bytearray()
    out += struct.pack("<Q", r["id"])
    out += rb_string(r["name"])
    out += rb_string(r["source"])
    out += struct.pack("<q", r["ts_us"])
    out += b"\x01" if r["score"] is None else b"\x00" + struct.pack("<I", r["score"])
    out += struct.pack("<H", r["port"])
    out += struct.pack("<I", r["count32"])
    out += struct.pack("<d", r["ratio"])
    out += varint(len(r["tags"])) + b"".join(rb_string(t) for t in r["tags"])
    out += struct.pack("<B", int(r["flagged"]))
    out += struct.pack("<B", r["flag8"])
    out += varint(len(r["attrs"]))
    for k, v in r["attrs"].items():
        out += rb_string(k) + rb_string(v)
    return bytes(out)


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def take(self, n):
        v = self.d[self.i:self.i + n]
        assert len(v) == n, "short read"
        self.i += n
        return v

    def varint(self):
        shift = n = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def string(self):
        return self.take(self.varint()).decode()

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def done(self):
        return self.i >= len(self.d)


def decode_row(rd):
    r = {"id": rd.unpack("<Q"), "name": rd.string(), "source": rd.string(),
         "ts_us": rd.unpack("<q")}
    r["score"] = None if rd.take(1) == b"\x01" else rd.unpack("<I")
    r["port"] = rd.unpack("<H")
    r["count32"] = rd.unpack("<I")
    r["ratio"] = rd.unpack("<d")
    r["tags"] = [rd.string() for _ in range(rd.varint())]
    r["flagged"] = bool(rd.unpack("<B"))
    r["flag8"] = rd.unpack("<B")
    r["attrs"] = {}
    for _ in range(rd.varint()):
        k = rd.string()
        r["attrs"][k] = rd.string()
    return r


def make_row(i, **over):
    row = {
        "id": i, "name": f"event-{i} ünïcode 'q' \\ \"dq\"", "source": ["fw", "ids", "edr"][i % 3],
        "ts_us": 1_700_000_000_123_456 + i, "score": None if i % 2 else i * 10,
        "port": 443 + i, "count32": 4_000_000_000 + i, "ratio": i / 8,
        "tags": [f"t{j}" for j in range(i % 3)], "flagged": bool(i % 2), "flag8": i % 2,
        "attrs": {"k": f"v{i}", "empty": ""} if i % 2 else {},
    }
    row.update(over)
    return row


def native_lz4_blocks(data, block_size):
    """Frame data the way the Rust crate does with Compression::Lz4 (one block per flush)."""
    out = bytearray()
    for start in range(0, len(data), block_size):
        chunk = data[start:start + block_size]
        payload = lz4.block.compress(chunk, store_size=False)
        header = bytes([0x82]) + struct.pack("<II", 9 + len(payload), len(chunk))
        out += chdb_http.block_checksum(header + payload) + header + payload
    return bytes(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir, port):
    log = open(os.path.join(os.path.dirname(data_dir), f"server-{port}.log"), "wb")
    proc = subprocess.Popen([PYTHON, SERVER, "--data", data_dir, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                c.request("GET", "/ping")
                if c.getresponse().read() == b"Ok.\n":
                    return proc, log
            finally:
                c.close()
        except OSError:
            time.sleep(0.2)
    proc.kill()
    log.close()
    with open(log.name, "rb") as fh:
        tail = fh.read()[-3000:].decode(errors="replace")
    raise RuntimeError(f"chdb_http did not come up on port {port}:\n{tail}")


def stop_server(proc, log):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


class ServerCase(unittest.TestCase):
    """Shared server for the protocol tests (one chDB session, one data dir)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="chdb-http-test-")
        cls.port = free_port()
        cls.proc, cls.log = start_server(os.path.join(cls.tmp, "data"), cls.port)
        cls.conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=30)  # keep-alive
        for sql in ("CREATE DATABASE IF NOT EXISTS sentra_test", EVENTS_DDL):
            status, _, body = cls.request(sql)
            assert status == 200, body

    @classmethod
    def tearDownClass(cls):
        cls.conn.close()
        stop_server(cls.proc, cls.log)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers
    @classmethod
    def request(cls, body=b"", params=None, headers=None, method="POST", chunked=False):
        if isinstance(body, str):
            body = body.encode()
        url = "/" + ("?" + urlencode(params) if params else "")
        hdrs = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": "not-a-secret"}
        hdrs.update(headers or {})
        if chunked:
            pieces = [body[i:i + 7001] for i in range(0, len(body), 7001)]
            cls.conn.request(method, url, body=iter(pieces), headers=hdrs, encode_chunked=True)
        else:
            cls.conn.request(method, url, body=body if method == "POST" else None, headers=hdrs)
        resp = cls.conn.getresponse()
        data = resp.read()
        return resp.status, resp, data

    def ok(self, body=b"", params=None, **kw):
        status, resp, data = self.request(body, params, **kw)
        self.assertEqual(status, 200, data.decode(errors="replace"))
        self.assertIsNone(resp.getheader("X-ClickHouse-Exception-Code"))
        return resp, data

    def scalar(self, sql, params=None):
        return self.ok(sql, params)[1].decode().strip()

    def insert_rows(self, table, rows, compressed=False, with_names=False):
        body = b""
        fmt = "RowBinary"
        if with_names:
            fmt = "RowBinaryWithNamesAndTypes"
            body += varint(len(COLUMNS)) + b"".join(rb_string(c) for c in COLUMNS) \
                + b"".join(rb_string(t) for t in TYPES)
        body += b"".join(encode_row(r) for r in rows)
        cols = ",".join(f"`{c}`" for c in COLUMNS)
        params = {"database": "sentra_test",
                  "query": f"INSERT INTO `{table}`({cols}) FORMAT {fmt}"}
        if compressed:
            params["decompress"] = "1"
            body = native_lz4_blocks(body, 4096)
        return self.ok(body, params, chunked=True)


class ProtocolTest(ServerCase):
    def test_01_ping(self):
        self.assertEqual(self.request(method="GET", params=None)[2], b"Ok.\n")
        self.conn.request("GET", "/ping")
        self.assertEqual(self.conn.getresponse().read(), b"Ok.\n")
        self.assertEqual(self.scalar("SELECT 1"), "1")
        _, _, data = self.request(method="GET", params={"query": "SELECT 40+2"})
        self.assertEqual(data, b"42\n")

    def test_02_insert_rowbinary_plain_and_select_rbwnat(self):
        rows = [make_row(i) for i in range(1, 6)]
        resp, _ = self.insert_rows("events", rows)
        summary = json.loads(resp.getheader("X-ClickHouse-Summary"))
        self.assertEqual(summary["written_rows"], "5")
        _, data = self.ok("SELECT * FROM events WHERE id BETWEEN 1 AND 5 ORDER BY id",
                          {"database": "sentra_test",
                           "default_format": "RowBinaryWithNamesAndTypes"})
        rd = Reader(data)
        n = rd.varint()
        names = [rd.string() for _ in range(n)]
        types = [rd.string() for _ in range(n)]
        self.assertEqual(names, COLUMNS)
        self.assertEqual(types, TYPES)
        got = []
        while not rd.done():
            got.append(decode_row(rd))
        self.assertEqual(got, rows)

    def test_03_insert_lz4_compressed_rbwnat(self):
        # RowBinaryWithNamesAndTypes is what the crate sends when validation is on.
        rows = [make_row(i, name="x" * (i * 300)) for i in range(100, 160)]
        self.insert_rows("events", rows, compressed=True, with_names=True)
        _, data = self.ok("SELECT * FROM events WHERE id >= 100 AND id < 160 ORDER BY id "
                          "FORMAT RowBinary", {"database": "sentra_test"})
        rd = Reader(data)
        got = []
        while not rd.done():
            got.append(decode_row(rd))
        self.assertEqual(got, rows)

    def test_03b_insert_of_thousands_of_rows_whatever_their_bytes(self):
        # `sentra run` sends thousands of rows (~1 MiB) per insert. Row 2127 holds the UInt16 2570, the
        # bytes "\n\n", which cut rows sent inline in chDB's query text short.
        rows = [make_row(i, name="y" * 500) for i in range(1000, 3000)]
        resp, _ = self.insert_rows("events", rows, compressed=True)
        self.assertEqual(json.loads(resp.getheader("X-ClickHouse-Summary"))["written_rows"], "2000")
        self.assertEqual(self.scalar("SELECT count() FROM sentra_test.events "
                                     "WHERE id >= 1000 AND id < 3000"), "2000")
        # A SETTINGS clause in the statement stays in effect.
        self.ok("CREATE TABLE IF NOT EXISTS sentra_test.checked_settings (u String) "
                "ENGINE = MergeTree ORDER BY u")
        self.ok(rb_string("s") + rb_string("t"), {
            "database": "sentra_test",
            "query": "INSERT INTO checked_settings(u) SETTINGS max_insert_threads = 1 FORMAT RowBinary"},
            chunked=True)
        self.assertEqual(self.scalar("SELECT count() FROM sentra_test.checked_settings"), "2")

    def test_04_compressed_bad_checksum_rejected(self):
        body = native_lz4_blocks(encode_row(make_row(999)), 4096)
        body = bytes([body[0] ^ 0xFF]) + body[1:]
        status, resp, data = self.request(body, {
            "database": "sentra_test", "decompress": "1",
            "query": f"INSERT INTO events({','.join(COLUMNS)}) FORMAT RowBinary"})
        self.assertNotEqual(status, 200)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "40")
        self.assertIn(b"CHECKSUM_DOESNT_MATCH", data)
        self.assertEqual(self.scalar("SELECT count() FROM sentra_test.events WHERE id = 999"),
                         "0")

    def test_05_select_json_each_row(self):
        self.insert_rows("events", [make_row(7)])
        _, data = self.ok("SELECT id, name, ts, score, tags, attrs, flagged FROM events "
                          "WHERE id = 7", {"database": "sentra_test",
                                           "default_format": "JSONEachRow"})
        row = json.loads(data)
        self.assertEqual(row["id"], 7)
        self.assertEqual(row["name"], make_row(7)["name"])
        self.assertEqual(row["ts"], "2023-11-14 22:13:20.123463")
        self.assertIsNone(row["score"])
        self.assertEqual(row["attrs"], {"k": "v7", "empty": ""})
        self.assertIs(row["flagged"], True)

    def test_06_response_compression(self):
        sql = "SELECT number, toString(number) FROM numbers(5000) FORMAT RowBinary"
        _, plain = self.ok(sql, {"enable_http_compression": "0"},
                           headers={"Accept-Encoding": "lz4"})
        resp, framed = self.ok(sql, headers={"Accept-Encoding": "lz4"})
        self.assertEqual(resp.getheader("Content-Encoding"), "lz4")
        self.assertEqual(lz4.frame.decompress(framed), plain)
        resp, native = self.ok(sql, {"compress": "1"})
        self.assertIsNone(resp.getheader("Content-Encoding"))
        self.assertEqual(chdb_http.decompress_native(native, verify=True), plain)

    def test_07_params_are_data_not_sql(self):
        nasty = "it's a \\\"trap\\\"'); DROP TABLE sentra_test.events; --\ttab"
        # The crate escapes string params (\\, \', \`, \t, \n) and sends them as multipart.
        escaped = (nasty.replace("\\", "\\\\").replace("'", "\\'").replace("`", "\\`")
                   .replace("\t", "\\t").replace("\n", "\\n"))
        boundary = "clickhouse-rs-boundary-" + uuid.uuid4().hex
        fields = [("query", "SELECT {s:String} AS s, {n:UInt32} + 1 AS n"),
                  ("param_s", escaped), ("param_n", "41")]
        body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                       f"{v}\r\n" for k, v in fields) + f"--{boundary}--\r\n"
        _, data = self.ok(body, {"default_format": "JSONEachRow"},
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.assertEqual(json.loads(data), {"s": nasty, "n": 42})
        # URL-parameter form, used as a filter value.
        self.insert_rows("events", [make_row(8, name=nasty)])
        _, data = self.ok("SELECT id FROM sentra_test.events WHERE name = {name:String}",
                          {"param_name": escaped})
        self.assertEqual(data, b"8\n")
        self.assertNotEqual(self.scalar("EXISTS TABLE sentra_test.events"), "0")

    def test_08_errors(self):
        status, resp, data = self.request("SELEC 1")
        self.assertEqual(status, 400)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "62")
        self.assertTrue(data.startswith(b"Code: 62. DB::Exception: Syntax error"), data)
        status, resp, data = self.request("SELECT * FROM sentra_test.no_such_table")
        self.assertEqual(status, 404)
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "60")
        status, resp, data = self.request("SELECT 1", {"no_such_setting": "1"})
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "115")
        status, resp, data = self.request(b"\x01\x02", {
            "database": "sentra_test", "query": "INSERT INTO events(id) FORMAT RowBinary"})
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "33")
        self.assertIn(b"Code: 33. DB::Exception", data)
        # A constraint violation in a RowBinary insert is an error, and no row of the block lands
        # (chDB's streaming-insert API would report it written and drop it).
        self.ok("CREATE TABLE IF NOT EXISTS sentra_test.checked (u String) ENGINE = MergeTree ORDER BY u")
        self.ok("ALTER TABLE sentra_test.checked ADD CONSTRAINT no_m CHECK u != 'mallory'")
        status, resp, data = self.request(rb_string("alice") + rb_string("mallory"), {
            "database": "sentra_test", "query": "INSERT INTO checked(u) FORMAT RowBinary"})
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "469", data)
        self.assertEqual(self.scalar("SELECT count() FROM sentra_test.checked"), "0")
        # Row data may start with whitespace bytes (here the lengths 10 = '\\n' and 32 = ' ').
        status, _, data = self.request(rb_string("0123456789") + rb_string("x" * 32), {
            "database": "sentra_test", "query": "INSERT INTO checked(u) FORMAT RowBinary"})
        self.assertEqual(status, 200, data)
        self.assertEqual(self.scalar("SELECT count() FROM sentra_test.checked WHERE length(u) IN (10, 32)"), "2")
        # The connection is still usable after errors (keep-alive).
        self.assertEqual(self.scalar("SELECT 'alive'"), "alive")

    def test_09_settings_apply_per_request_only(self):
        status, resp, _ = self.request("SELECT number FROM numbers(10)",
                                       {"max_result_rows": "1", "result_overflow_mode": "throw"})
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "396")
        self.assertEqual(len(self.scalar("SELECT number FROM numbers(10)").split()), 10)
        self.assertEqual(self.scalar("SELECT getSetting('max_execution_time')",
                                     {"max_execution_time": "17", "wait_end_of_query": "1",
                                      "session_id": "x", "query_id": "q1"}), "17")
        self.assertEqual(self.scalar("SELECT getSetting('max_execution_time')"), "0")
        self.ok("SET max_threads = 1")  # plain SET must not leak either
        self.assertNotEqual(self.scalar("SELECT getSetting('max_threads')"), "1")
        # Server-like defaults rather than chDB's.
        self.assertEqual(self.scalar("SELECT getSetting('date_time_input_format')"), "basic")

    def test_10_describe_like_the_crate(self):
        _, data = self.ok("DESCRIBE TABLE `events`", {
            "database": "sentra_test", "default_format": "RowBinaryWithNamesAndTypes",
            "describe_include_subcolumns": "0"})
        rd = Reader(data)
        n = rd.varint()
        self.assertEqual([rd.string() for _ in range(n)],
                         ["name", "type", "default_type", "default_expression", "comment",
                          "codec_expression", "ttl_expression"])
        types = [rd.string() for _ in range(n)]
        self.assertEqual(types, ["String"] * 7)
        names = []
        while not rd.done():
            row = [rd.string() for _ in range(n)]
            names.append((row[0], row[1]))
        self.assertEqual(names, list(zip(COLUMNS, TYPES)))

    def test_11_replacing_merge_tree_and_json_insert(self):
        self.ok("CREATE TABLE IF NOT EXISTS sentra_test.latest (id UInt64, v String, "
                "ver UInt64) ENGINE = ReplacingMergeTree(ver) ORDER BY id")
        rows = "".join(json.dumps({"id": 1, "v": f"v{i}", "ver": i}) + "\n" for i in range(3))
        self.ok(rows, {"query": "INSERT INTO sentra_test.latest FORMAT JSONEachRow"})
        self.ok('INSERT INTO sentra_test.latest FORMAT JSONEachRow {"id":2,"v":"x","ver":1}')
        self.ok("INSERT INTO sentra_test.latest VALUES (3, 'y', 1)")
        _, data = self.ok("SELECT id, v FROM sentra_test.latest FINAL ORDER BY id",
                          {"default_format": "JSONCompactEachRow"})
        self.assertEqual([json.loads(line) for line in data.splitlines()],
                         [[1, "v2"], [2, "x"], [3, "y"]])
        self.ok("OPTIMIZE TABLE sentra_test.latest FINAL")
        self.ok("ALTER TABLE sentra_test.latest ADD COLUMN IF NOT EXISTS extra String")
        self.ok("CREATE MATERIALIZED VIEW IF NOT EXISTS sentra_test.latest_mv ENGINE = "
                "MergeTree ORDER BY id AS SELECT id, v FROM sentra_test.latest")
        self.ok("INSERT INTO sentra_test.latest (id, v, ver) VALUES (4, 'mv', 1)")
        self.assertEqual(self.scalar("SELECT v FROM sentra_test.latest_mv"), "mv")
        self.ok("DROP TABLE sentra_test.latest_mv")

    def test_12_database_param_and_unknown_database(self):
        self.assertEqual(self.scalar("SELECT currentDatabase()", {"database": "sentra_test"}),
                         "sentra_test")
        self.assertEqual(self.scalar("SELECT currentDatabase()"), "default")
        status, resp, _ = self.request("SELECT 1", {"database": "nope"})
        self.assertEqual(resp.getheader("X-ClickHouse-Exception-Code"), "81")


class PersistenceTest(unittest.TestCase):
    def test_data_survives_restart(self):
        tmp = tempfile.mkdtemp(prefix="chdb-http-persist-")
        data_dir = os.path.join(tmp, "data")
        try:
            for step in range(2):
                port = free_port()
                proc, log = start_server(data_dir, port)
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    sqls = ["CREATE TABLE IF NOT EXISTS p (a UInt64) ENGINE = MergeTree ORDER BY a",
                            "INSERT INTO p VALUES (1)"] if step == 0 else []
                    for sql in sqls + ["SELECT count() FROM p"]:
                        c.request("POST", "/", body=sql.encode())
                        r = c.getresponse()
                        out = r.read()
                        self.assertEqual(r.status, 200, out)
                    self.assertEqual(out, b"1\n")
                    c.close()
                finally:
                    stop_server(proc, log)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
