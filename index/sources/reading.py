"""Reading the library's sources: each `LibrarySource` becomes a `SourceRead` for the
planner, and a record of how the read went (last read, last error, validators).

Folders and files are read by index/sources/formats.py; URLs are fetched by
index/sources/fetch.py, and a URL that turns out to be a feed or a news sitemap is read
entry by entry (feeds only add: an entry gone from a feed is not a removal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from index.articles import Article
from index.errors import SourceError
from index.report import Failure
from index.settings import JsonKeys
from index.sources.feeds import Entry, feed_entries, feed_kind, sitemap_entries
from index.sources.fetch import CLI_POLICY, Fetched, FetchPolicy, fetch, is_url, public_policy
from index.sources.formats import LoadResult, download_name, load_sources, read_bytes
from index.sources.library import LibrarySource, PageState, SourceLibrary


@dataclass(frozen=True)
class SourceRead:
    """What reading one library source gave.

    `ok` is False when the source could not be read at all (its articles are kept);
    `complete` is False when the articles are not everything the source holds (a feed,
    or a page the server says is unchanged), so nothing missing from them is removed.
    `failures` are the entries (files, records) that could not be read.

    What is known unchanged without being read again is unchanged all the same: every
    article of a source whose server answered 304 (`not_modified`), and the feed entries
    (`unchanged`, their links) that were skipped or answered 304."""

    key: str
    ok: bool
    articles: tuple[Article, ...] = ()
    failures: tuple[Failure, ...] = ()
    complete: bool = True
    not_modified: bool = False
    unchanged: tuple[str, ...] = ()

    def holds_unchanged(self, article_id: str) -> bool:
        """Whether the article `article_id`, indexed from this source and not read now,
        is known to be as it was (the server said so, or the feed dated it as before)."""
        if not self.ok:
            return False
        return self.not_modified or any(
            article_id == link or article_id.startswith(link + "#") for link in self.unchanged
        )

    def outcome(self) -> str:
        """How the read went, for a report's line about this source."""
        if not self.ok:
            return "could not be read"
        if self.not_modified:
            return "not modified since the last read (HTTP 304), nothing downloaded"
        noun = "article" if len(self.articles) == 1 else "articles"
        read = f"read, {len(self.articles)} {noun}"
        if self.unchanged:
            read += f", {len(self.unchanged)} unchanged not downloaded again"
        return read


UPLOAD_SCHEME = "upload://"


def source_key(location: str) -> str:
    """The library key of a location: a URL as given, a path made absolute (symlinks
    followed when they can be)."""
    if is_url(location) or location.startswith(UPLOAD_SCHEME):
        return location
    path = Path(location).expanduser()
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return str(path.absolute())


def local_kind(key: str) -> str:
    return "folder" if Path(key).is_dir() else "file"


def upload_key(uploader: str, name: str) -> str:
    """An upload's key, namespaced by who uploaded it: never a bare file name."""
    return f"{UPLOAD_SCHEME}{uploader or 'unknown'}/{PurePosixPath(name).name or 'upload'}"


@dataclass
class LibraryReader:
    """Reads sources with the settings' JSON keys and one fetch policy; `conditional`
    sends the validators of the last read, and `indexed` (article ids in the index)
    lets a feed skip the entries it already has."""

    library: SourceLibrary
    json_keys: JsonKeys
    policy: FetchPolicy = CLI_POLICY
    conditional: bool = False
    indexed: Collection[str] = ()
    # `sources.allowed_hosts`: what a source added from Slack may fetch though not public.
    allowed_hosts: Collection[str] = ()
    # `index.max_article_chars`: a longer article is its source's failure.
    max_chars: int | None = None
    # `index rebuild --prune`: a folder now empty loses the articles indexed from it.
    prune: bool = False
    downloads: int = 0

    def read(self, source: LibrarySource, now: str) -> tuple[SourceRead, LibrarySource]:
        try:
            if source.kind == "upload":
                read = self._read_upload(source)
            elif is_url(source.key):
                read, source = self._read_url(source)
            else:
                read = self._read_local(source)
        except SourceError as exc:
            read = SourceRead(source.key, ok=False, failures=(Failure(exc.source, exc.reason),))
        error = "; ".join(f"{f.source}: {f.reason}" for f in read.failures)
        if read.ok and read.complete:
            source = replace(source, articles=len(read.articles))
        return read, replace(source, last_read=now, last_error=error)

    def _policy(self, source: LibrarySource) -> FetchPolicy:
        """A source added from Slack keeps the Slack policy, also when the CLI refreshes it."""
        if source.public_only and not self.policy.public_only:
            return public_policy(self.allowed_hosts)
        return self.policy

    def _read_local(self, source: LibrarySource) -> SourceRead:
        path = Path(source.key)
        loaded = load_sources([source.key], self.json_keys, max_chars=self.max_chars)
        whole = [f for f in loaded.failures if f.source == source.key]
        if not path.exists() or (whole and not loaded.articles):
            raise SourceError(source.key, whole[0].reason if whole else "no such file or folder")
        if path.is_dir() and not loaded.articles and not self.prune:
            # An unmounted share looks like this: its articles stay until --prune says so.
            held = sum(1 for a in self.indexed if a.startswith(source.key.rstrip("/") + "/"))
            if held:
                raise SourceError(
                    source.key,
                    f"the folder holds no articles now, but {held} were indexed from it (not "
                    "mounted?): they stay; `citebot index rebuild --prune` removes them",
                )
        return SourceRead(source.key, True, tuple(loaded.articles), tuple(loaded.failures))

    def _read_upload(self, source: LibrarySource) -> SourceRead:
        data = self.library.get_upload(source.upload_sha256)
        if data is None:
            raise SourceError(source.key, "the uploaded bytes are missing from the store")
        loaded = read_bytes(
            source.upload_name, data, source.key, self.json_keys, max_chars=self.max_chars
        )
        return SourceRead(source.key, True, tuple(loaded.articles), tuple(loaded.failures))

    def _read_url(self, source: LibrarySource) -> tuple[SourceRead, LibrarySource]:
        etag, modified = (source.etag, source.last_modified) if self.conditional else ("", "")
        got = fetch(source.key, self._policy(source), etag, modified)
        if got.not_modified:
            return SourceRead(source.key, True, complete=False, not_modified=True), source
        self.downloads += 1
        source = replace(source, etag=got.etag, last_modified=got.last_modified)
        kind = feed_kind(got.data, got.content_type)
        if kind is None:
            loaded = read_fetched(got, source.key, self.json_keys, self.max_chars)
            read = SourceRead(source.key, True, tuple(loaded.articles), tuple(loaded.failures))
            return read, replace(source, kind="url")
        entries = feed_entries if kind == "feed" else sitemap_entries
        return self._read_entries(source, entries(got.data, source.key)), replace(source, kind=kind)

    def _read_entries(self, source: LibrarySource, entries: list[Entry]) -> SourceRead:
        """Each entry's page, skipping those indexed whose entry date is unchanged, and
        asking the others' servers whether they changed since they were fetched."""
        pages = self.library.pages()
        articles: list[Article] = []
        failures: list[Failure] = []
        fetched: list[PageState] = []
        unchanged: list[str] = []
        for entry in entries:
            known = pages.get(entry.link)
            if entry.link in self.indexed and known and known.entry_updated == entry.updated:
                unchanged.append(entry.link)
                continue
            use = known if (known and entry.link in self.indexed) else PageState(entry.link)
            try:
                got = fetch(entry.link, self._policy(source), use.etag, use.last_modified)
                if got.not_modified:
                    unchanged.append(entry.link)
                else:
                    self.downloads += 1
                    articles += _entry_articles(got, entry, self.json_keys, self.max_chars)
            except SourceError as exc:
                failures.append(Failure(exc.source, exc.reason))
                continue
            etag = got.etag if not got.not_modified else use.etag
            modified = got.last_modified if not got.not_modified else use.last_modified
            fetched.append(PageState(entry.link, etag, modified, entry.updated))
        self.library.save_pages(fetched)
        return SourceRead(
            source.key,
            True,
            tuple(articles),
            tuple(failures),
            complete=False,
            unchanged=tuple(unchanged),
        )


def read_fetched(
    got: Fetched, url: str, json_keys: JsonKeys, max_chars: int | None = None
) -> LoadResult:
    """The articles in a fetched page or document, read by its content type or, when
    that says little, by the URL's extension; they get `url` as their id and source."""
    name = download_name(got.url, got.content_type)
    return read_bytes(name, got.data, url, json_keys, url=url, max_chars=max_chars)


def _entry_articles(
    got: Fetched, entry: Entry, json_keys: JsonKeys, max_chars: int | None
) -> list[Article]:
    """The entry's page as an article (id: the entry's link), the feed filling in the
    title and date the page lacks."""
    name = download_name(got.url, got.content_type)
    loaded = read_fetched(got, entry.link, json_keys, max_chars)
    stem = PurePosixPath(urlsplit(got.url).path).stem
    out = []
    for article in loaded.articles:
        changes: dict[str, str] = {}
        if entry.title and article.title in ("", stem, Path(name).stem):
            changes["title"] = entry.title
        if entry.published and not article.published:
            changes["published"] = entry.published
        out.append(dataclasses.replace(article, **changes) if changes else article)
    return out
