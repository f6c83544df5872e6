"""Repositories of the common layouts, each with a hand-written progress document and a status document.

Every layout holds tests about restarts, retries and tenants where its
language keeps them; its progress document (``docs/PROGRESS.md``, committed)
names one of its test files and one of its test names under the first
criterion, and its ``docs/STATUS.md`` has a "N/M pass" line of each kind
(all passing; some failing). :data:`PILLARS` is what each document claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tests.support.git import GitRepo

DOC_DATE = "2026-02-01"
WHEN = datetime(2026, 2, 2, 9, 0, tzinfo=timezone.utc)

# (pillar title, claimed %, [(criterion title, score)]): what every layout's document says, in its order.
PILLARS = [
    ("Durability (Temporal-inspired)", "55%", [("Survive restart without semantic drift", 0.70),
                                               ("Retry and backoff explicit", 0.40)]),
    ("Tenancy", "35%", [("Tenant isolation consistency", 0.50), ("Audit trail of policy decisions", 0.20)]),
]


@dataclass(frozen=True)
class Layout:
    name: str
    files: dict[str, str]
    test_file: str  # a test file the document names
    test_name: str  # a test name the document names (without its file)


def _python_beside() -> Layout:
    return Layout("python-beside", {
        "pyproject.toml": "[project]\nname = 'svc'\n",
        "svc/__init__.py": "",
        "svc/engine.py": "def run():\n    return 1\n",
        "svc/test_engine.py": "def test_restart_keeps_state():\n    pass\n\n\ndef test_recover_after_crash():\n    pass\n",
        "svc/retry/test_backoff.py": "class TestRetry:\n    def test_retry_backoff_grows(self):\n        pass\n",
        "test_tenants.py": "def test_tenant_isolation_enforced():\n    pass\n",
    }, "svc/test_engine.py", "test_recover_after_crash")


def _python_tests() -> Layout:
    return Layout("python-tests", {
        "setup.cfg": "[metadata]\nname = svc\n",
        "src/svc/engine.py": "def run():\n    return 1\n",
        "tests/test_restart.py": "def test_restart_keeps_state():\n    pass\n\n\nasync def test_recover_after_crash():\n    pass\n",
        "tests/test_retry.py": "import unittest\n\n\nclass RetryTests(unittest.TestCase):\n"
                               "    def test_retry_backoff_grows(self):\n        pass\n",
        "tests/test_tenants.py": "def test_tenant_isolation_enforced():\n    pass\n",
    }, "tests/test_restart.py", "test_recover_after_crash")


def _go() -> Layout:
    return Layout("go", {
        "go.mod": "module example.com/svc\n\ngo 1.22\n",
        "internal/engine/engine.go": "package engine\n\nfunc Run() int { return 1 }\n",
        "internal/engine/engine_test.go": "package engine\n\nimport \"testing\"\n\n"
                                          "func TestRestartKeepsState(t *testing.T) {}\n\nfunc TestRecoverAfterCrash(t *testing.T) {}\n",
        "internal/retry/retry_test.go": "package retry\n\nimport \"testing\"\n\nfunc TestRetryBackoffGrows(t *testing.T) {}\n",
        "internal/tenant/tenant_test.go": "package tenant\n\nimport \"testing\"\n\nfunc TestTenantIsolation(t *testing.T) {}\n",
    }, "internal/engine/engine_test.go", "TestRecoverAfterCrash")


def _typescript() -> Layout:
    return Layout("typescript", {
        "package.json": '{"name": "svc", "scripts": {"test": "vitest"}}\n',
        "src/engine.ts": "export const run = () => 1;\n",
        "src/engine.test.ts": "describe('engine', () => {\n  it('restart keeps state', () => {});\n"
                              "  test('recover after crash', () => {});\n});\n",
        "src/__tests__/retry.ts": "it('retry backoff grows', () => {});\n",
        "src/tenant.spec.ts": "test('tenant isolation enforced', () => {});\n",
    }, "src/engine.test.ts", "")


def _java_maven() -> Layout:
    test = ("package com.example;\n\nimport org.junit.jupiter.api.Test;\n\nclass RestartTest {\n"
            "    @Test\n    void restartKeepsState() {}\n\n    @Test\n    void recoverAfterCrash() {}\n}\n")
    return Layout("java-maven", {
        "pom.xml": "<project><modelVersion>4.0.0</modelVersion><artifactId>svc</artifactId></project>\n",
        "src/main/java/com/example/Engine.java": "package com.example;\n\nclass Engine {}\n",
        "src/test/java/com/example/RestartTest.java": test,
        "src/test/java/com/example/RetryTest.java": "package com.example;\n\nclass RetryTest {\n    @Test\n"
                                                    "    void retryBackoffGrows() {}\n}\n",
        "src/test/java/com/example/TenantTest.java": "package com.example;\n\nclass TenantTest {\n    @Test\n"
                                                     "    void tenantIsolation() {}\n}\n",
    }, "src/test/java/com/example/RestartTest.java", "")


LAYOUTS = {layout.name: layout for layout in (_python_beside(), _python_tests(), _go(), _typescript(), _java_maven())}


def progress_document(layout: Layout, *, date: str | None = DOC_DATE) -> str:
    """The team's hand-written snapshot: the first criterion names a test file (and a test) of the layout."""
    mention = f"`{layout.test_file}`" + (f" and `{layout.test_name}`" if layout.test_name else "")
    head = f"# Progress snapshot\nDate: {date}\n\n" if date else "# Progress snapshot\n\n"
    (p1, c1, (r1, r2)), (p2, c2, (t1, t2)) = PILLARS
    return head + f"""### 1) {p1}
Criteria scoring:
1. {r1[0]}: {r1[1]:.2f}
   Evidence: {mention}
2. {r2[0]}: {r2[1]:.2f}
Pillar completion: {c1}

### 2) {p2}
- {t1[0]}: {t1[1]:.2f}
- {t2[0]}: {t2[1]:.2f}
Pillar completion: {c2}

Overall target architecture completion: 45%
"""


STATUS = "# Status\n\n- Restart stress suite: 4/4 pass\n- Tenant isolation suite: 3/5 pass\n"


def layout_repo(path: Path, name: str) -> GitRepo:
    """The layout `name` committed at :data:`WHEN`, with docs/PROGRESS.md and docs/STATUS.md."""
    layout = LAYOUTS[name]
    repo = GitRepo(path)
    for rel, text in layout.files.items():
        repo.write(rel, text)
    repo.write("docs/PROGRESS.md", progress_document(layout))
    repo.write("docs/STATUS.md", STATUS)
    repo.write("LICENSE", "MIT\n")
    repo.commit("the service", when=WHEN)
    return repo
