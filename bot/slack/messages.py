"""Every text a person reads from the Slack app: replies, labels, refusals and start-up errors."""

from __future__ import annotations

from index.report import IndexReport, redacted

# --- start-up errors (raised as SettingsError by SlackConfig.from_settings) ---

MISSING_BOT_TOKEN = (
    "set SLACK_BOT_TOKEN (the bot's xoxb- token, under OAuth & Permissions in the Slack app's "
    "settings) in the environment"
)
BAD_BOT_TOKEN = "SLACK_BOT_TOKEN must be the bot's token, which starts with xoxb-"
MISSING_SIGNING_SECRET = (
    "set SLACK_SIGNING_SECRET (Basic Information > App Credentials > Signing Secret in the "
    "Slack app's settings) in the environment, or set SLACK_APP_TOKEN to use Socket Mode"
)
BAD_APP_TOKEN = (
    "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information > "
    "App-Level Tokens, scope connections:write); unset it to serve over HTTP instead"
)
TOKEN_REFUSED = (
    "Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token again from "
    "OAuth & Permissions, and reinstall the app if its scopes changed"
)
MISSING_CLIENT_SECRET = (
    "slack.client_id is set, so set SLACK_CLIENT_SECRET too (Basic Information > App "
    "Credentials > Client Secret in the Slack app's settings), or unset slack.client_id "
    "(SLACK_CLIENT_ID) to serve one workspace with SLACK_BOT_TOKEN"
)
BOT_TOKEN_WITH_CLIENT_ID = (
    "SLACK_BOT_TOKEN and slack.client_id (SLACK_CLIENT_ID) are both set: unset "
    "SLACK_BOT_TOKEN to install into many workspaces (each gets its token from the OAuth "
    "flow), or unset slack.client_id to serve one workspace with that token"
)
SOCKET_MODE_WITH_CLIENT_ID = (
    "SLACK_APP_TOKEN (Socket Mode) and slack.client_id (SLACK_CLIENT_ID) are both set: the "
    "OAuth flow installs over HTTP (/slack/install), so unset one of them"
)
BAD_INSTALLATION_STORE = (
    "slack.installation_store (CITEBOT_INSTALLATION_STORE) can't be used ({reason}): give a "
    "SQLAlchemy URL such as sqlite:////var/lib/citebot/installations.sqlite3 or "
    "postgresql://host/db, with its driver installed, and check that it is reachable"
)
BAD_STATE_STORE = (
    "slack.state_store (CITEBOT_STATE_STORE) can't be used ({reason}): give a SQLAlchemy URL "
    "of a SQLite or PostgreSQL database, such as postgresql+psycopg://citebot@db/citebot, "
    "with its driver installed, and check that it is reachable"
)
SINGLE_TOKEN_GONE = (
    "Slack sent {event} for workspace {team}: if the app was uninstalled or its bot token "
    "revoked, SLACK_BOT_TOKEN no longer works; reinstall the app and set its new token"
)
SLACK_UNREACHABLE = (
    "could not reach the Slack Web API at {url} ({reason}): check the network, or "
    "CITEBOT_SLACK_API_URL / slack.api_url in the settings"
)

# --- answers ---

NO_ANSWER = "The articles don't answer this. The closest passages I found:"
NOTHING_FOUND = "The articles don't answer this, and I found no passage close to it."
SOURCES = "Sources"
MODEL_CHECKED = "Written by {model}; each sentence is checked against the quotes it cites."
MODEL_LEFT_OUT = (
    "Written by {model}; each sentence is checked against the quotes it cites, and {count} "
    "not supported by them left out."
)
MODEL_FAILED = "No answer from {model} ({failure}). The quotes alone:"
MORE_QUOTES = "…and {count} more, left out to fit Slack's limits."
ASKED = "<@{user}> asked: {question}"
HELPFUL = "👍"
NOT_HELPFUL = "👎"
HELPFUL_LABEL = "This answer was helpful"
NOT_HELPFUL_LABEL = "This answer was not helpful"
SHARE = "Share to channel"
FEEDBACK_THANKS = "Thanks, your {vote} is recorded."
EMPTY_QUESTION = (
    "Ask me a question about the articles, for example `@citebot who denied the crematorium claim?`"
)
APOLOGY = "Sorry, something went wrong while I was answering. Please try again in a minute."
ANSWER_LOST = (
    "Sorry, I restarted before I could answer this, and it is a while ago now. Please ask again."
)
BUSY = (
    "Sorry, I'm answering too many questions right now to take yours. Please ask again in a "
    "minute. (Admins: slack.answer_workers and slack.answer_queue in citebot's settings.)"
)
CHANNEL_NOT_ALLOWED = (
    "I don't answer in this channel. Ask me in a direct message, or in a channel listed "
    "under slack.channels in citebot's settings."
)
ASK_USAGE = "Usage: `/ask QUESTION`, for example `/ask who denied the crematorium claim?`"
ANSWER_GONE = "I no longer have that answer. Ask again with `/ask`."
SHARE_NOT_IN_CHANNEL = (
    "I can't post in this channel because I'm not a member. "
    "Invite me with `/invite @citebot`, then share again."
)

SCOPED = "Answered only from this channel's sources: {sources}"
READ_AS = "Read as: {question}"

# --- the assistant view ---

PROMPTS_TITLE = "Ask about the articles, for example:"
HEADLINE_PROMPT = "What happened with {headline}?"
EXAMPLE_QUESTION = "Who denied the crematorium claim?"
# Slack shows up to four suggested prompts; a longer title is cut.
MAX_SUGGESTED_PROMPTS = 4
MAX_PROMPT_TITLE = 75
MAX_TITLE = 100
SEARCHING = "Searching {count} articles…"
SEARCHING_SOME = "Searching the articles…"

# --- the Home tab ---

HOME_TITLE = "citebot"
HOME_HOW_TO_ASK = (
    "*How to ask.* citebot answers questions about the indexed news articles with "
    "sentences quoted word for word, each linked to its article.\n"
    "• Open citebot in the assistant view (the top bar, or the app's *Chat* tab) and ask.\n"
    "• Mention @citebot in a channel it is in; reply in its thread for a follow-up.\n"
    "• Send it a direct message, or use `/ask QUESTION` for an answer only you see."
)
HOME_INDEXED = (
    "*What is indexed.* {articles} articles from {sources} sources; last change {updated}{rebuilt}."
)
HOME_REBUILT = ", last rebuild {rebuilt}"
HOME_UNREACHABLE = "*What is indexed.* The index can't be read right now: see the server's log."
HOME_ADMIN = "Admin"
HOME_SOURCES = "*Sources*"
HOME_CONFIGURED = "configured in the settings file (`index.sources`); remove it there"
HOME_SOURCE = "`{source}` ({kind}): {articles} article(s); {how}"
HOME_ADDED = "added by {who}"
HOME_PRIVATE = "\n:lock: Private: answers only in {where}, where it was added."
HOME_DM = "a direct message (`{channel}`)"
HOME_SHARE = "Make public"
HOME_SHARE_CONFIRM = "Answer every channel from {source}, not only the one it was added in?"
HOME_INDEXED_ONLY = "indexed, from no library source"
HOME_SOURCE_ERROR = "\n:warning: Last read failed: {error}"
HOME_MORE_SOURCES = "…and {count} more sources (`/citebot sources` lists them all)."
HOME_REMOVE = "Remove"
HOME_REMOVE_CONFIRM = "Remove {source} and its {articles} article(s) from the index?"
HOME_ADD = "Add a URL or feed"
HOME_REPORT = "*Latest change from Slack* ({when}):\n{report}"
HOME_NO_REPORT = "*Latest change from Slack:* none yet."
HOME_LIBRARY_REPORT = "*Latest {what}* ({when}):\n```{lines}```"
HOME_DOWN_VOTES = "*Latest 👎 answers*"
HOME_NO_DOWN_VOTES = "No 👎 yet."
HOME_DOWN_VOTE = "<@{user}> ({when}) asked: *{question}*\n{answer}"
DOWN_VOTES_SHOWN = 5
MODAL_TITLE = "Add a URL or feed"
MODAL_LABEL = "Web addresses of pages or feeds (RSS, Atom, news sitemaps), one or more"
MODAL_HINT = (
    "Each page is fetched, read and indexed; a feed's pages too, and the feed is read again "
    "every sources.refresh_minutes. Only public addresses. The report appears on the Home tab."
)
MODAL_SUBMIT = "Add"
ADD_USAGE_MODAL = "Give at least one web address, like https://example.com/news/story"

# --- adding sources ---

CITEBOT_HELP = (
    "*citebot* answers questions about news articles with quoted sentences.\n"
    "• Mention me in a channel, or send me a direct message, to get an answer in a thread.\n"
    "• `/ask QUESTION` answers only you, with a button to share the answer.\n"
    "• Admins: `/citebot add URL` adds a web article or a feed (RSS, Atom, news sitemap); "
    "uploading a file (txt, md, html, pdf, json, jsonl) to me in a direct message adds it too. "
    "`/citebot sources` lists the sources, `/citebot remove SOURCE_OR_ARTICLE` removes one. "
    "What is added in a DM, a group DM or a private channel answers only there, until "
    "`/citebot share SOURCE` makes it public."
)
ADD_USAGE = "Usage: `/citebot add URL [URL …]`, for example `/citebot add https://example.com/news`"
REMOVE_USAGE = (
    "Usage: `/citebot remove SOURCE_OR_ARTICLE [...]`: a source or an article as "
    "`/citebot sources` lists it"
)
SHARE_USAGE = (
    "Usage: `/citebot share SOURCE [...]`: a private source as `/citebot sources` lists it, "
    "to answer in every channel"
)
SHARING = "Making {count} source(s) public… I'll post the outcome here."
SHARED = "Now answering in every channel from: {sources}."
NOT_PRIVATE = "{sources}: public already, nothing changed."
SHARE_FAILED = "I couldn't share {what}: {reason}"
SHARE_APOLOGY = "Sorry, something went wrong while sharing {what}; nothing was changed."
PRIVATE_HERE = (
    "\n:lock: Private: only questions asked in this conversation are answered from it. "
    "`/citebot share SOURCE` makes it public."
)
NOT_A_URL = "`{text}` is not a web address: give URLs starting with http:// or https://."
# Said by bolt to a workspace with no installation (uninstalled, or never installed).
NOT_INSTALLED = (
    "citebot is not installed in this workspace (any more). A workspace admin can install "
    "it again from the install page of whoever runs it (/slack/install)."
)
NOT_ADMIN = (
    "Sorry, only citebot admins can add, remove or list sources, and the index is unchanged. "
    "Ask an admin to add it (admins are listed under slack.admins in citebot's settings)."
)
ADDING = "Adding {count} source(s) to the index… I'll post the report here."
REMOVING = "Removing {count} source(s) or article(s)… I'll post the report here."
SOURCES_LIST = "*The source library*\n```{lines}```"
NO_SOURCES = "The library has no sources yet: add one with `/citebot add URL`."
SOURCES_APOLOGY = "Sorry, something went wrong while reading the source library."
NO_FILE = "I found no file to add in that message."
DOWNLOAD_FAILED = "I couldn't download `{name}` from Slack, so the index is unchanged."
TOO_LARGE = "`{name}` is larger than {limit_mb} MB, so I didn't add it."
ADD_FAILED = "I couldn't add {what}: {reason}"
REMOVE_FAILED = "I couldn't remove {what}: {reason}"
# A report posted to Slack stays this short (Slack cuts a message's text after 4,000
# characters, and refuses one over 40,000: an upload with 3,000 bad lines made 326,011).
REPORT_CHARS = 3000
REPORT_LINE_CHARS = 300
MORE_LINES = "…and {count} more"
# With many workspaces, another workspace's sources are as if they were not there.
NOT_THIS_WORKSPACES = (
    "{item} is neither a source nor an indexed article of this workspace: see `/citebot sources`"
)
ANOTHER_WORKSPACES = "{source} was added in another workspace, so it can't be added here too"
ADD_APOLOGY = "Sorry, something went wrong while adding {what}; the index may be unchanged."
REMOVE_APOLOGY = "Sorry, something went wrong while removing {what}; the index may be unchanged."


def escape(text: str) -> str:
    """Escapes the three characters Slack's mrkdwn treats as markup: text from an article,
    a file name or a remote server's reply must not ping (`<!channel>`) or link anyone.
    The credentials of a URL in it are not shown either."""
    return redacted(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def report_text(what: str, report: IndexReport, verb: str = "Indexed", note: str = "") -> str:
    """The admin's report of an add (or a removal): the CLI's lines, plus which sources
    landed where, then `note`, within REPORT_CHARS ("…and N more"; the first line keeps
    the counts). `what` is mrkdwn already; sources and reasons are escaped here."""
    head = f"{verb} {what}: " + report.summary()
    lines = []
    for label, sources in (
        ("added", report.added),
        ("changed", report.changed),
        ("unchanged", report.unchanged),
        ("removed", report.removed if verb != "Indexed" else []),
    ):
        lines += [f"{label}: {escape(_cut(source))}" for source in sources]
    lines += [f"failed: {escape(_cut(f.source))}: {escape(_cut(f.reason))}" for f in report.failed]
    return "\n".join([head, *within(lines, REPORT_CHARS - len(head) - len(note))]) + note


def within(lines: list[str], limit: int) -> list[str]:
    """As many of `lines` as fit in `limit` characters (newlines counted), then one line
    saying how many more there are."""
    shown, used = [], 0
    for number, line in enumerate(lines):
        after = len(lines) - number - 1
        room = limit - (len(MORE_LINES.format(count=f"{after:,}")) + 1 if after else 0)
        if used + len(line) + 1 > room:
            return [*shown, MORE_LINES.format(count=f"{len(lines) - number:,}")]
        shown.append(line)
        used += len(line) + 1
    return shown


def _cut(text: str) -> str:
    """One source or reason, cut (before it is escaped) to REPORT_LINE_CHARS."""
    return text if len(text) <= REPORT_LINE_CHARS else text[: REPORT_LINE_CHARS - 1] + "…"
