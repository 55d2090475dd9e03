"""Symbols, imports and identifiers extracted by the real tree-sitter grammars, per language."""

from __future__ import annotations

import pytest
from pilotfish.code_index.chunks import chunk_file
from pilotfish.code_index.symbols import (
    identifiers_around,
    identifiers_in,
    parse_source,
    split_identifier,
)

PYTHON = '''\
import os
from .config import load_config as lc, Settings

MAX_RETRIES = 3

@dataclass
class Client(Base):
    """A client for the API.

    More text.
    """
    timeout: int = 5

    def get(self, url: str,
            retries: int = MAX_RETRIES) -> Response:
        """Fetch a URL."""
        return self._send("GET", url)

    def _send(self, method, url):
        pass

def helper(x):
    # a comment, not a docstring
    return x
'''

JAVASCRIPT = '''\
import { readFile } from "fs";
/** Parses a config file. */
export function parseConfig(text) { return JSON.parse(text); }
class Cache {
  get(key) { return this.map.get(key); }
}
const add = (a, b) => a + b;
export const LIMIT = 10;
'''

TYPESCRIPT = '''\
import { a } from "./mod";
/** Adds numbers. */
export function add(x: number, y: number): number { return x + y; }
export interface Shape { area(): number; }
export type Id = string;
export abstract class Base { abstract run(): void; }
enum Color { Red }
'''

TSX = '''\
/** A button. */
export function Button(props: { label: string }) { return <button>{props.label}</button>; }
'''

GO = '''\
package srv
import (
  "fmt"
  "net/http"
)
// Server serves requests.
type Server struct { Addr string }
type Handler interface { Serve(w int) error }
// Run starts the server.
func (s *Server) Run(port int) error { return nil }
func New() *Server { return &Server{} }
const Max = 10
'''

RUST = '''\
use std::collections::HashMap;
/// A point in the plane.
pub struct Point { x: i32 }
impl<T> Point { pub fn norm(&self) -> f64 { 0.0 } }
pub trait Shape { fn area(&self) -> f64; }
pub enum Kind { A, B }
pub const LIMIT: usize = 4;
fn main() {}
'''

JAVA = '''\
package a;
import java.util.List;
/** A user. */
public class User {
  private String name;
  public User(String n) { name = n; }
  /** Name getter. */
  public String getName() { return name; }
}
interface Repo { User find(int id); }
'''

C = '''\
#include <stdio.h>
#define MAX 10
/* Adds two ints. */
int add(int a, int b) { return a + b; }
char *dup(const char *s);
struct point { int x; };
typedef struct point point_t;
'''

CPP = '''\
#include "shape.h"
namespace geo {
/// A shape.
class Shape {
 public:
  virtual double area() const;
};
double Shape::area() const { return 0; }
template <typename T> T id(T x) { return x; }
}
'''


def _table(source: str, path: str, language: str) -> dict[str, tuple[str, str, int]]:
    parsed = parse_source(source, path, language)
    assert parsed.error is None
    table: dict[str, tuple[str, str, int]] = {}
    for s in parsed.symbols:
        table.setdefault(s.qualified_name, (s.kind, s.doc, s.start_line))
    return table


@pytest.mark.parametrize(
    ("source", "path", "language", "expected"),
    [
        (PYTHON, "a.py", "python", {
            "MAX_RETRIES": ("constant", "", 4),
            "Client": ("class", "A client for the API.\n\nMore text.", 7),
            "Client.timeout": ("field", "", 12),
            "Client.get": ("method", "Fetch a URL.", 14),
            "Client._send": ("method", "", 19),
            "helper": ("function", "", 22),
        }),
        (JAVASCRIPT, "a.js", "javascript", {
            "parseConfig": ("function", "Parses a config file.", 3),
            "Cache": ("class", "", 4),
            "Cache.get": ("method", "", 5),
            "add": ("function", "", 7),
            "LIMIT": ("constant", "", 8),
        }),
        (TYPESCRIPT, "a.ts", "typescript", {
            "add": ("function", "Adds numbers.", 3),
            "Shape": ("interface", "", 4),
            "Shape.area": ("method", "", 4),
            "Id": ("type", "", 5),
            "Base": ("class", "", 6),
            "Base.run": ("method", "", 6),
            "Color": ("enum", "", 7),
        }),
        (TSX, "a.tsx", "typescriptreact", {"Button": ("function", "A button.", 2)}),
        (GO, "a.go", "go", {
            "Server": ("struct", "Server serves requests.", 7),
            "Handler": ("interface", "", 8),
            "Handler.Serve": ("method", "", 8),
            "Server.Run": ("method", "Run starts the server.", 10),
            "New": ("function", "", 11),
            "Max": ("constant", "", 12),
        }),
        (RUST, "a.rs", "rust", {
            "Point": ("struct", "A point in the plane.", 3),
            "Point.norm": ("method", "", 4),
            "Shape": ("interface", "", 5),
            "Shape.area": ("method", "", 5),
            "Kind": ("enum", "", 6),
            "LIMIT": ("constant", "", 7),
            "main": ("function", "", 8),
        }),
        (JAVA, "User.java", "java", {
            "User": ("class", "A user.", 4),
            "User.name": ("field", "", 5),
            "User.User": ("method", "", 6),
            "User.getName": ("method", "Name getter.", 8),
            "Repo": ("interface", "", 10),
            "Repo.find": ("method", "", 10),
        }),
        (C, "a.c", "c", {
            "MAX": ("macro", "", 2),
            "add": ("function", "Adds two ints.", 4),
            "dup": ("function", "", 5),
            "point": ("struct", "", 6),
            "point_t": ("type", "", 7),
        }),
        (CPP, "a.cpp", "cpp", {
            "geo": ("module", "", 2),
            "geo.Shape": ("class", "A shape.", 4),
            "geo.Shape.area": ("method", "", 6),
            "geo.id": ("function", "", 9),
        }),
    ],
    ids=["python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"],
)
def test_definitions_per_language(
    source: str, path: str, language: str, expected: dict[str, tuple[str, str, int]]
) -> None:
    table = _table(source, path, language)
    for name, want in expected.items():
        assert table.get(name) == want, (name, table.get(name))


def test_cpp_out_of_class_definition_is_qualified() -> None:
    parsed = parse_source(CPP, "a.cpp", "cpp")
    defs = [s for s in parsed.symbols if s.name == "area"]
    assert {s.qualified_name for s in defs} == {"geo.Shape.area"}
    assert any(s.signature == "double Shape::area() const" for s in defs)


def test_python_signature_doc_and_ranges() -> None:
    parsed = parse_source(PYTHON, "a.py", "python")
    get = next(s for s in parsed.symbols if s.name == "get")
    assert get.signature == (
        "def get(self, url: str, retries: int = MAX_RETRIES) -> Response:"
    )
    assert (get.start_line, get.end_line) == (14, 17)
    assert PYTHON.encode()[get.start_byte:get.end_byte].startswith(b"def get(")
    helper = next(s for s in parsed.symbols if s.name == "helper")
    assert helper.signature == "def helper(x):"


def test_long_class_summary_is_an_outline_with_method_signatures() -> None:
    body = "\n".join(f"    def m{i}(self, x):\n        return x + {i}\n" for i in range(10))
    source = f'class Big:\n    """Big things."""\n{body}'
    parsed = parse_source(source, "big.py", "python")
    big = next(d for d in parsed.definitions if d.symbol.name == "Big")
    assert big.summary.splitlines()[0] == "class Big:"
    assert '"""Big things."""' in big.summary
    assert "    def m3(self, x): ..." in big.summary
    assert "return x + 3" not in big.summary


def test_imports_per_language() -> None:
    py = parse_source(PYTHON, "a.py", "python").imports
    assert [(i.module, i.names) for i in py] == [("os", ("os",)), (".config", ("lc", "Settings"))]
    go = parse_source(GO, "a.go", "go").imports
    assert [i.module for i in go] == ["fmt", "net/http"]
    ts = parse_source(TYPESCRIPT, "a.ts", "typescript").imports
    assert ts[0].module == "./mod" and "a" in ts[0].names
    rs = parse_source(RUST, "a.rs", "rust").imports
    assert rs[0].names == ("HashMap",)
    java = parse_source(JAVA, "U.java", "java").imports
    assert java[0].module == "java.util.List"
    assert parse_source(C, "a.c", "c").imports[0].module == "stdio.h"


def test_identifiers_around_a_position_nearest_first() -> None:
    source = "alpha = 1\nbeta = alpha\n\ngamma = beta + delta\nomega = 2\n"
    names = identifiers_around(source, 3, before=3, after=1)
    assert names[:3] == ["gamma", "beta", "delta"]
    assert "alpha" in names and "omega" in names
    assert identifiers_in("return self.client.fetch(url)") == ["url", "fetch", "client"]


def test_split_identifier() -> None:
    assert split_identifier("parseHTTPRequest_v2") == ["parse", "http", "request", "v2"]
    assert split_identifier("MAX_RETRIES") == ["max", "retries"]


@pytest.mark.parametrize(
    "source",
    [
        b"\x00\x01\x02\xff\xfe binary garbage",
        b"def broken(:\n  return ((\n",
        "def ünïcode(ß): return 'ok'\n".encode(),
        b"\xff\xfe invalid utf-8 \xc3\x28",
    ],
)
def test_bad_input_never_raises(source: bytes) -> None:
    parsed = parse_source(source, "bad.py", "python")
    assert parsed.error is None
    chunks = chunk_file("bad.py", source.decode("utf-8", "replace"), parsed, "python")
    assert all(c.path == "bad.py" for c in chunks)


def test_unknown_language_has_no_symbols() -> None:
    assert parse_source("puts 1", "a.rb", "ruby").symbols == []


def test_chunks_are_symbol_aligned_with_stable_ids() -> None:
    parsed = parse_source(PYTHON, "a.py", "python")
    chunks = chunk_file("a.py", PYTHON, parsed, "python")
    by_symbol = {c.symbol: c for c in chunks}
    assert {"Client", "helper"} <= set(by_symbol)
    assert by_symbol["helper"].text.startswith("def helper(x):")
    # An edit above a function shifts its lines but keeps its id and content hash.
    shifted = "# a new comment\n\n" + PYTHON
    again = {c.symbol: c for c in chunk_file(
        "a.py", shifted, parse_source(shifted, "a.py", "python"), "python")}
    assert again["helper"].id == by_symbol["helper"].id
    assert again["helper"].content_hash == by_symbol["helper"].content_hash
    assert again["helper"].start_line == by_symbol["helper"].start_line + 2
