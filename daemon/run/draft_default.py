"""Without a document: the four pillars of config/examples/target-architecture.yaml, drafted for one repository (pure).

Each criterion keeps the example's title; its checks are drafted from the
repository as a document's would be (test cases named like the title, status
lines), plus the files the example looks for where this repository has them
(a licence, CI configuration, lock files, a changelog, docs).
"""

from __future__ import annotations

from wcmatch import glob

from collectors.gitrepo import GLOB_FLAGS
from daemon.run.draft import Draft, DraftCheck, DraftCriterion, DraftPillar, RepoView, StatusDoc, draft_criteria, slug

__all__ = ["EXAMPLE_PILLARS", "draft_default"]

_CI = "{.ci/*,.github/workflows/*.y*ml,.gitlab-ci.yml,Jenkinsfile,.circleci/config.yml}"
_LOCKS = ("{poetry.lock,uv.lock,Pipfile.lock,requirements*.txt,pyproject.toml,package-lock.json,yarn.lock,"
          "pnpm-lock.yaml,go.sum,Cargo.lock,pom.xml,build.gradle*}")

# (pillar title, [(criterion title, files the example looks for or None)]), in the example's order.
EXAMPLE_PILLARS: list[tuple[str, list[tuple[str, str | None]]]] = [
    ("Durability (Temporal-inspired)", [
        ("Survive restart without semantic drift", None),
        ("Retry/timer/resume explicit and test-covered", None),
        ("Checkpoint/replay API backward compatibility", "{CHANGELOG*,CHANGES*,HISTORY*}"),
    ]),
    ("Contracts, Artifacts, Promotion (Dagster/dbt-inspired)", [
        ("Orchestrated reproducible pipeline stages", _LOCKS),
        ("Traceable lineage source -> artifacts", None),
        ("CI/local equivalent governance outcomes", _CI),
    ]),
    ("Policy and Tenancy (Kubernetes/OPA-inspired)", [
        ("Externally explainable and auditable policy decisions", None),
        ("Tenant isolation consistency", None),
        ("Existing runtime safety controls preserved", None),
    ]),
    ("Developer Experience and Distribution (Stripe-like/Vercel-like)", [
        ("Time-to-first-success measured and improved", "README*"),
        ("Docs/examples parity-validated", "{docs,examples}/**"),
        ("Environment promotion flow documented/reproducible", "{deploy,k8s,helm,charts}/**"),
        ("OSS baseline without paid SaaS", "{LICENSE,LICENSE.*,COPYING}"),
    ]),
]


def _files_check(pattern: str, view: RepoView) -> DraftCheck | None:
    matcher = glob.compile(pattern, flags=GLOB_FLAGS)
    found = [p for p in view.files if matcher.match(p)]
    if not found:
        return None
    shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
    return DraftCheck(check={"source": "repo", "signal": "file_exists", "glob": pattern},
                      reason=f"the example looks for these files; at HEAD: {shown}", start=1.0)


def draft_default(view: RepoView, status: list[StatusDoc]) -> Draft:
    """The example's pillars and criteria, with checks drafted from `view`."""
    titles = [[c for c, _ in criteria] for _, criteria in EXAMPLE_PILLARS]
    drafted, status_docs = draft_criteria(titles, [[[] for _ in row] for row in titles], view, status)
    pillar_ids: set[str] = set()
    pillars = []
    for (title, criteria), checks_of in zip(EXAMPLE_PILLARS, drafted):
        ids: set[str] = set()
        rows = []
        for (criterion, files), checks in zip(criteria, checks_of):
            extra = _files_check(files, view) if files else None
            rows.append(DraftCriterion(id=slug(criterion, ids), title=criterion,
                                       checks=([extra] if extra else []) + checks))
        pillars.append(DraftPillar(id=slug(title, pillar_ids), title=title, criteria=rows))
    return Draft(project=slug(view.name), title=view.name, commit=view.commit, status_docs=status_docs, pillars=pillars)
