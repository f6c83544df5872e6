"""Test cases found where each language keeps them by convention: pure, no git, no I/O.

:func:`language_of` says whether a path is a test file by its language's
convention (no folder is hard-coded), :data:`TESTS_PRESET` is the same
conventions as one glob (the ``@tests`` glob preset), and
:func:`find_test_cases` lists the test cases one file defines:

- Python, read with :mod:`ast`: module-level ``test*`` functions (pytest's
  default prefix, so ``test_*`` too), ``test*`` methods of ``Test*`` classes
  without ``__init__`` (nested ones too) and of any class whose bases name
  ``...TestCase`` (unittest, Django), async ones too; a parametrised function
  counts once. A file that does not parse defines none.
- Go: ``func TestXxx(t *testing.T)`` (``Xxx`` not starting with a lower-case letter).
- JavaScript and TypeScript: ``it(`` and ``test(`` calls with a literal title,
  also ``.only``, ``.skip`` and ``.concurrent``; ``.each`` tables and ``.todo``
  are not counted. The scope is the ``describe``/``context``/``suite`` chain,
  read line by line with braces as block bounds.
- Java and Kotlin: methods annotated ``@Test`` (also ``@ParameterizedTest`` and
  ``@RepeatedTest``, counted once), scoped by their class.
- Rust: functions after ``#[test]`` or ``#[<crate>::test]`` (``#[tokio::test]``).

Line patterns run on RE2 (:mod:`collectors.regex`): linear in the text.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar, Literal

from pydantic import BaseModel

from collectors.regex import compile_regex

__all__ = ["GLOB_PRESETS", "TESTS_PRESET", "Language", "TestCase", "expand_glob", "find_test_cases", "glob_param",
           "language_of"]

Language = Literal["python", "go", "javascript", "java", "rust"]

_JS_EXTENSIONS = ("js", "jsx", "ts", "tsx", "mjs", "cjs")
_JS = "{" + ",".join(_JS_EXTENSIONS) + "}"
TESTS_PRESET = (
    "{**/test_*.py,**/*_test.py,**/tests/**/*.py,**/test/**/*.py,"
    "**/*_test.go,"
    f"**/*.{{test,spec}}.{_JS},**/__tests__/**/*.{_JS},"
    "**/src/test/**/*.{java,kt},**/*{Test,Tests}.{java,kt},"
    "**/*.rs}"
)
# Named globs a git signal's `glob` may give as `@name`.
GLOB_PRESETS = {"tests": TESTS_PRESET}
_PRESET_NAME = compile_regex(r"^@[A-Za-z][\w-]*$")


def glob_param(value: str) -> str:
    """A pydantic validator: `value` unchanged, unless it names a glob preset that does not exist (a ValueError)."""
    if value.startswith("@") and _PRESET_NAME.search(value) and value[1:] not in GLOB_PRESETS:
        known = ", ".join("@" + name for name in GLOB_PRESETS)
        raise ValueError(f"unknown glob preset {value!r} (known: {known})")
    return value


def expand_glob(pattern: str) -> str:
    """The glob that `pattern` stands for: a preset's (``@tests``), else `pattern` itself."""
    return GLOB_PRESETS.get(pattern[1:], pattern) if pattern.startswith("@") else pattern


class TestCase(BaseModel):
    """One test case: where it is defined (1-based line), its name and its scope (class or describe chain)."""

    __test__: ClassVar[bool] = False  # a model, not a pytest test class

    path: str
    line: int
    name: str
    scope: str | None = None
    language: Language


def language_of(path: str) -> Language | None:
    """The language whose test-file convention `path` follows, or None when it is not a test file."""
    folders = path.split("/")[:-1]
    name = posixpath.basename(path)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return None
    if ext == "py":
        return "python" if (stem.startswith("test_") or stem.endswith("_test")
                            or "tests" in folders or "test" in folders) else None
    if ext == "go":
        return "go" if stem.endswith("_test") else None
    if ext in _JS_EXTENSIONS:
        middle = stem.rpartition(".")[2] if "." in stem else None
        return "javascript" if middle in ("test", "spec") or "__tests__" in folders else None
    if ext in ("java", "kt"):
        under_src_test = any(pair == ("src", "test") for pair in pairwise(folders))
        return "java" if under_src_test or stem.endswith(("Test", "Tests")) else None
    if ext == "rs":
        return "rust"
    return None


def find_test_cases(path: str, text: str) -> list[TestCase]:
    """The test cases that the test file `path` with content `text` defines, in file order; [] for other files."""
    language = language_of(path)
    if language is None:
        return []
    found = _READERS[language](path, text)
    return [TestCase(path=path, line=line, name=name, scope=scope, language=language) for line, name, scope in found]


_Found = Iterator[tuple[int, str, str | None]]  # (line, name, scope)

# -- Python ---------------------------------------------------------------------------------------------------------

_Def = ast.FunctionDef | ast.AsyncFunctionDef


def _python(path: str, text: str) -> _Found:
    try:
        module = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # a NUL byte; nesting deeper than the parser goes
        return
    found: dict[tuple[str | None, str], int] = {}  # a name defined twice is the last definition, as pytest sees it
    for node in _statements(module.body):
        if isinstance(node, _Def) and node.name.startswith("test"):
            found.pop((None, node.name), None)
            found[(None, node.name)] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for scope, name, line in _python_class(node, None):
                found.pop((scope, name), None)
                found[(scope, name)] = line
    for (scope, name), line in sorted(found.items(), key=lambda item: item[1]):
        yield line, name, scope


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module body, with those under a module-level if/try (they define module names too)."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _statements(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _statements(node.body + node.orelse + node.finalbody)
        else:
            yield node


def _python_class(node: ast.ClassDef, outer: str | None) -> Iterator[tuple[str, str, int]]:
    unittest = any(_base_name(base).endswith("TestCase") for base in node.bases)
    body = list(_statements(node.body))
    pytest_class = node.name.startswith("Test") and not any(
        isinstance(n, _Def) and n.name in ("__init__", "__new__") for n in body)
    if not (unittest or pytest_class) or _not_a_test(body):
        return
    scope = node.name if outer is None else f"{outer}::{node.name}"
    for child in body:
        if isinstance(child, _Def) and child.name.startswith("test"):
            yield scope, child.name, child.lineno
        elif isinstance(child, ast.ClassDef) and not unittest:
            yield from _python_class(child, scope)


def _base_name(base: ast.expr) -> str:
    """`TestCase` for ``TestCase``, ``unittest.TestCase``, ``TestCase[int]``."""
    while isinstance(base, ast.Subscript):
        base = base.value
    return base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""


def _not_a_test(body: list[ast.stmt]) -> bool:
    """``__test__ = False`` in a class body: pytest and unittest leave the class out."""
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__test__" for t in n.targets)
               and isinstance(n.value, ast.Constant) and n.value.value is False for n in body)


# -- Go and Rust: one line names the test ---------------------------------------------------------------------------

_GO_TEST = compile_regex(r"^func\s+(Test(?:[^a-z\W]\w*)?)\s*\(\s*\w*\s*\*testing\.T\s*\)")
_RUST_ATTRIBUTE = compile_regex(r"^\s*#\[\s*(?:\w+::)*test\s*[\](]")
_RUST_FN = compile_regex(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:(?:async|const|unsafe|extern(?:\s+\"[^\"]*\")?)\s+)*"
                         r"fn\s+([A-Za-z_]\w*)")
_COMMENT_STARTS = ("//", "/*", "*")  # a line comment or a line of a block comment
_JS_WORDS = ("it", "test", "describe", "context", "suite")


def _go(path: str, text: str) -> _Found:
    for number, line in enumerate(text.splitlines(), 1):
        m = _GO_TEST.search(line) if line.startswith("func") else None
        if m:
            yield number, str(m.group(1)), None


def _rust(path: str, text: str) -> _Found:
    pending = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(_COMMENT_STARTS):
            continue
        if "#[" in line and _RUST_ATTRIBUTE.search(line):
            pending = True
        m = _RUST_FN.search(line) if pending else None
        if m:
            pending = False
            yield number, str(m.group(1)), None


# -- JavaScript, Java and Kotlin: tests inside brace-delimited scopes -------------------------------------------------

_TITLE = r"\s*\(\s*(?:'([^']*)'|\"([^\"]*)\"|`([^`]*)`)"
_JS_CALL = compile_regex(r"(?:^|[^\w$.])(describe|context|suite|it|test)(?:\.(only|skip|concurrent|each|todo))?"
                         + _TITLE)
_JAVA_STRING = compile_regex(r"\"(?:[^\"\\]|\\.)*\"")
_JAVA_CLASS = compile_regex(r"(?:^|[^\w$.])(?:class|interface|object)\s+([A-Za-z_$][\w$]*)")
_JAVA_TEST = compile_regex(r"@(?:[\w.]+\.)?(?:Test|ParameterizedTest|RepeatedTest)(?:[^\w$]|$)")
_JAVA_METHOD = compile_regex(r"(?:^|[^@\w$.])([A-Za-z_$][\w$]*)\s*\(")
_KOTLIN_FUN = compile_regex(r"\bfun\s+(?:<[^>]*>\s*)?(?:[\w.]+\.)?(`[^`]+`|[A-Za-z_]\w*)\s*\(")

# An event on a line: (column, kind, text) with kind "{", "}", "scope" (opens a named scope), "test", or "mark"
# (a test annotation: the next method is a test).
_Event = tuple[int, str, str]


_SCOPE_CHARS = 500  # a scope deeper than this is cut: memory stays linear in the file


@dataclass(slots=True)
class _Scope:
    name: str
    depth: int  # the brace depth where it was named
    opened: bool = False


def _scoped(text: str, events: Callable[[str], list[_Event]], joiner: str, *, block_on_line: bool) -> _Found:
    """Tests and the named scopes around them, a scope lasting until the braces opened after it close.

    A scope is opened by the first ``{`` after its name; one not opened on its own line holds nothing when
    `block_on_line` (``describe("x", fn)``), else until the next name or ``{`` (a class brace on the next line).
    """
    stack: list[_Scope] = []
    depth, pending = 0, False
    shown: str | None = None  # the scope as text, joined again only after the stack changed
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(_COMMENT_STARTS):
            continue
        for _, kind, value in sorted(events(line)):
            if kind == "{":
                if stack and not stack[-1].opened:
                    stack[-1].opened, shown = True, None
                depth += 1
            elif kind == "}":
                depth = max(depth - 1, 0)
                while stack and stack[-1].depth >= depth:
                    stack.pop()
                    shown = None
            elif kind == "scope":
                if stack and not stack[-1].opened:
                    stack.pop()
                stack.append(_Scope(value, depth))
                shown = None
            elif kind == "mark":
                pending = True
            elif kind == "test" or (kind == "method" and pending):
                pending = False
                if shown is None:
                    shown = joiner.join(s.name for s in stack if s.opened)[:_SCOPE_CHARS]
                yield number, value, shown or None
        if block_on_line and stack and not stack[-1].opened:
            stack.pop()


def _braces(line: str) -> list[_Event]:
    return [(i, ch, ch) for i, ch in enumerate(line) if ch in "{}"]


def _js_events(line: str) -> list[_Event]:
    found = _braces(line)
    if "(" not in line or not any(word in line for word in _JS_WORDS):
        return found  # cheaper than asking RE2
    for m in _JS_CALL.finditer(line):
        call, modifier = m.group(1), m.group(2)
        title = next((t for t in (m.group(3), m.group(4), m.group(5)) if t is not None), "")
        if modifier in ("each", "todo"):
            continue
        found.append((m.start(1), "scope" if call in ("describe", "context", "suite") else "test", title))
    return found


def _java_events(line: str, kotlin: bool) -> list[_Event]:
    line = _JAVA_STRING.sub('""', line) if '"' in line and not kotlin else line
    found = _braces(line)
    if any(word in line for word in ("class", "interface", "object")):
        found += [(m.start(1), "scope", str(m.group(1))) for m in _JAVA_CLASS.finditer(line)]
    marks = list(_JAVA_TEST.finditer(line)) if "@" in line else []
    found += [(m.start(), "mark", "") for m in marks]
    after = _skip_arguments(line, marks[-1].end() - 1) if marks else 0
    method = _KOTLIN_FUN if kotlin else _JAVA_METHOD
    m = method.search(line[after:]) if "(" in line else None
    if m:
        found.append((after + m.start(1), "method", str(m.group(1)).strip("`")))
    return found


def _skip_arguments(line: str, at: int) -> int:
    """The column after an annotation's `(...)` arguments starting at or after `at`, if it has any."""
    rest = line[at:]
    stripped = rest.lstrip()
    if not stripped.startswith("("):
        return at
    start = at + len(rest) - len(stripped)
    level = 0
    for i in range(start, len(line)):
        level += {"(": 1, ")": -1}.get(line[i], 0)
        if level == 0:
            return i + 1
    return len(line)


def _javascript(path: str, text: str) -> _Found:
    return _scoped(text, _js_events, " > ", block_on_line=True)


def _java(path: str, text: str) -> _Found:
    kotlin = path.endswith(".kt")
    return _scoped(text, lambda line: _java_events(line, kotlin), ".", block_on_line=False)


_READERS: dict[Language, Callable[[str, str], _Found]] = {
    "python": _python, "go": _go, "javascript": _javascript, "java": _java, "rust": _rust,
}
