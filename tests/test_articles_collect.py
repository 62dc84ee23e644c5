"""collect_articles across sources: URL feeds over a real loopback HTTP server, deduplication
across a feed and a folder, ordering, and the bundled sample site."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dispatch.articles import CollectOptions, collect_articles
from dispatch.articles.feeds import USER_AGENT
from dispatch.errors import ConfigError
from dispatch.sample import SAMPLE_SOURCES, SAMPLE_WINDOW

FIXTURES = Path(__file__).parent / "fixtures"
FEEDS = FIXTURES / "feeds"
SITE = FIXTURES / "site"


class FeedServer:
    """A real HTTP server on loopback serving fixture feeds, a 404, a stall and a trickle."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.user_agents: list[str] = []
        self.authorizations: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.user_agents.append(self.headers.get("User-Agent", ""))
                owner.authorizations.append(self.headers.get("Authorization", ""))
                if self.path == "/feed.xml":
                    body = (FEEDS / "rss_content.xml").read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path == "/relative.xml":
                    body = (
                        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                        b"<title>r</title><item><title>Rel</title><link>/posts/rel</link>"
                        b"<pubDate>Mon, 16 Nov 2026 10:00:00 +0000</pubDate>"
                        b'<description>&lt;img src="pic.jpg"&gt; text</description>'
                        b"</item></channel></rss>"
                    )
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path in ("/moved.xml", "/to-file.xml", "/to-ftp.xml"):
                    target = {
                        "/moved.xml": "/feed.xml",
                        "/to-file.xml": "file:///etc/passwd",
                        "/to-ftp.xml": "ftp://127.0.0.1/feed.xml",
                    }[self.path]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                elif self.path == "/stall.xml":
                    owner.release.wait(30)  # never answers within the client's timeout
                elif self.path == "/trickle.xml":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.end_headers()
                    # A byte at a time, each well inside the per-read timeout: only the
                    # whole-download deadline can stop this.
                    while not owner.release.wait(0.05):
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                else:
                    self.send_error(404, "Not Found")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_url_feed_is_fetched_with_our_user_agent(server: FeedServer) -> None:
    result = collect_articles([f"{server.base}/feed.xml"])
    assert result.warnings == []
    assert [a.title for a in result.articles] == [
        "Harbour lights switched on for the winter",
        "Ferry timetable changes",
    ]
    assert all(a.source == f"{server.base}/feed.xml" for a in result.articles)
    assert server.user_agents == [USER_AGENT]


def test_relative_links_in_a_url_feed_resolve_against_the_feed_url(server: FeedServer) -> None:
    (article,) = collect_articles([f"{server.base}/relative.xml"]).articles
    assert article.url == f"{server.base}/posts/rel"
    assert article.image_url == f"{server.base}/posts/pic.jpg"


def test_http_404_is_a_warning_and_other_sources_still_count(server: FeedServer) -> None:
    missing = f"{server.base}/gone.xml"
    result = collect_articles([missing, str(FEEDS / "atom.xml")])
    assert len(result.articles) == 2
    (warning,) = result.warnings
    assert warning.source == missing
    assert "HTTP 404" in warning.message


def test_redirects_are_followed_only_to_http(server: FeedServer) -> None:
    assert len(collect_articles([f"{server.base}/moved.xml"]).articles) == 2
    result = collect_articles([f"{server.base}/to-file.xml", f"{server.base}/to-ftp.xml"])
    assert result.articles == []
    file_warning, ftp_warning = (w.message for w in result.warnings)
    assert "HTTP 302" in file_warning and "not allowed" in file_warning  # urllib's own check
    assert "redirect to a non-http(s) address refused" in ftp_warning  # ours


def test_connection_refused_is_a_warning() -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed.xml"
    result = collect_articles([url])
    assert result.articles == []
    (warning,) = result.warnings
    assert warning.source == url
    assert warning.message.startswith(f"cannot reach {url}")
    assert "refused" in warning.message.lower()


def test_a_server_that_never_answers_hits_the_timeout(server: FeedServer) -> None:
    url = f"{server.base}/stall.xml"
    result = collect_articles([url], CollectOptions(timeout=0.3))
    (warning,) = result.warnings
    assert warning.message == f"{url} did not answer within 0.3 seconds"


def test_a_trickling_server_hits_the_whole_download_deadline(server: FeedServer) -> None:
    url = f"{server.base}/trickle.xml"
    result = collect_articles([url], CollectOptions(timeout=0.3))
    (warning,) = result.warnings
    assert warning.message == f"{url} did not answer within 0.3 seconds"


def test_same_story_in_a_feed_and_a_folder_is_merged_by_canonical_url() -> None:
    result = collect_articles([str(FEEDS / "ledger.xml"), str(SITE / "gazette")])
    market = [a for a in result.articles if "Market day" in a.title]
    assert len(market) == 1
    # the folder's full text beats the feed's one-line summary, whichever source came first
    assert market[0].guid == "file:gazette/market-day.md"
    assert market[0].source == str(SITE / "gazette")


def test_same_guid_in_two_feeds_is_merged_and_the_full_version_wins() -> None:
    result = collect_articles([str(FEEDS / "mirror.xml"), str(FEEDS / "rss_content.xml")])
    lights = [a for a in result.articles if "Harbour lights" in a.title]
    assert len(lights) == 1
    assert lights[0].source == str(FEEDS / "rss_content.xml")
    assert lights[0].url == "https://gazette.example.org/news/harbour-lights"


def test_articles_are_sorted_newest_first_across_sources() -> None:
    result = collect_articles([str(FEEDS / "atom.xml"), str(FEEDS / "rss_content.xml")])
    dates = [a.published for a in result.articles]
    assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]
    assert len(dates) == 4


def test_the_same_source_listed_twice_is_read_once() -> None:
    path = str(FEEDS / "atom.xml")
    assert len(collect_articles([path, path, f" {path} "]).articles) == 2


def test_unsupported_scheme_is_a_warning() -> None:
    result = collect_articles(["ftp://example.org/feed.xml"])
    assert result.warnings[0].message == "ftp: sources are not supported (use http(s))"


def test_invalid_boilerplate_pattern_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="DISPATCH_BOILERPLATE_PATTERNS"):
        collect_articles([str(FEEDS / "atom.xml")], CollectOptions(boilerplate_patterns=("(",)))


def test_sample_site_collects_cleanly_inside_its_week_with_one_merged_story() -> None:
    result = collect_articles(SAMPLE_SOURCES)
    assert result.warnings == []
    start, end = SAMPLE_WINDOW
    assert len(result.articles) == 7  # 4 folder + 4 feed items, one story in both
    for article in result.articles:
        assert article.published is not None and start <= article.published < end
        assert article.title and article.excerpt and article.body_html
        assert "click here" not in article.body_html.lower()
        assert "Maya Okafor, Editor" not in article.body_html
    school = [a for a in result.articles if "St Anne" in a.title]
    assert len(school) == 1
    assert school[0].source == SAMPLE_SOURCES[0]  # the folder's full text beat the summary
    plain = [a for a in result.articles if a.guid.endswith(".txt")]
    assert len(plain) == 1 and plain[0].published == datetime(2026, 11, 17, tzinfo=UTC)


def test_a_password_in_a_feed_url_is_sent_as_basic_auth_and_never_shown(server: FeedServer):
    url = server.base.replace("http://", "http://reader:s3cret%21@") + "/feed.xml"
    result = collect_articles([url])
    assert result.articles and not result.warnings
    assert server.authorizations[-1] == "Basic " + base64.b64encode(b"reader:s3cret!").decode()
    missing = server.base.replace("http://", "http://reader:s3cret%21@") + "/nope.xml"
    [warning] = collect_articles([missing]).warnings
    assert "s3cret" not in str(warning) and "***@127.0.0.1" in str(warning)
