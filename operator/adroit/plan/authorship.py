"""Who changed a Flavor, every change since production's revision.

The admission webhook keeps, on each Flavor, the annotation adroit.dev/authors:
a JSON list of [revision, author] pairs, one per change of the spec, oldest
first. Nobody else may write it (the webhook puts back what was there), so a
train's car can name every author of the changes it carries since the revision
production runs, and separation of duties holds over all of them, not only
over the last writer.

Under GitOps every Flavor is written by the GitOps controller; the settings
name such trusted writers (approval.trustedAuthors), and from them the
annotation adroit.dev/author (the commit's author, written by the pipeline)
names the author. From anyone else, that annotation is refused.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adroit.api import names
from adroit.api.train import MAX_AUTHORS, USERNAME_LIMIT

# Changes remembered per Flavor: older ones are forgotten (a train then names only these).
HISTORY_LIMIT = MAX_AUTHORS

Change = tuple[str, str]  # (revision, author)


@dataclass(frozen=True)
class Authorship:
    """Who a Flavor write is by, or why it is refused."""

    author: str
    refusal: str | None = None


def write_author(
    user: str,
    old: Mapping[str, str],
    new: Mapping[str, str],
    trusted: Sequence[str],
) -> Authorship:
    """The author of a Flavor write by `user`, given the old and new annotations."""
    claimed = new.get(names.AUTHOR)
    if user in trusted:
        if claimed is not None and len(claimed) > USERNAME_LIMIT:
            return Authorship(
                user,
                f"{names.AUTHOR} is {len(claimed)} characters long; a train records an author "
                f"in at most {USERNAME_LIMIT}: name the commit's author more briefly (a "
                "username or an e-mail address)",
            )
        return Authorship(claimed or user)
    if len(user) > USERNAME_LIMIT:
        return Authorship(
            user,
            f"your username is {len(user)} characters long ({user[:40]}...); a train records "
            f"the authors of its changes in at most {USERNAME_LIMIT}, so that none of them "
            "approves their own change: change the Flavor as a user (or ServiceAccount) with a "
            "shorter name, or through the GitOps pipeline",
        )
    if claimed != old.get(names.AUTHOR):
        return Authorship(
            user,
            f"{names.AUTHOR} names the author of a change and is written only by the GitOps "
            f"pipeline's trusted writers (settings approval.trustedAuthors); {user} is not one. "
            f"Leave the annotation out (your own changes are recorded as yours), or change "
            "the Flavor through the Git repository",
        )
    return Authorship(user)


def read_history(text: str | None) -> tuple[Change, ...]:
    """The changes an adroit.dev/authors annotation records (none when unreadable)."""
    if not text:
        return ()
    try:
        data = json.loads(text)
        return tuple((str(r), str(a)) for r, a in data)
    except (ValueError, TypeError):
        return ()


def with_change(text: str | None, revision: str, author: str) -> str:
    """The adroit.dev/authors annotation after a change of the spec to `revision`."""
    changes = [*read_history(text), (revision, author)][-HISTORY_LIMIT:]
    return json.dumps([list(c) for c in changes], separators=(",", ":"))


def authors_since(history: Sequence[Change], running: str | None) -> list[str]:
    """Every author of the changes made since the spec last became `running` (the revision
    production runs; None: never deployed, every recorded change counts), first seen first."""
    start = 0
    for i, (revision, _) in enumerate(history):
        if revision == running:
            start = i + 1
    authors: list[str] = []
    for _, author in history[start:]:
        if author and author not in authors:
            authors.append(author)
    return authors
