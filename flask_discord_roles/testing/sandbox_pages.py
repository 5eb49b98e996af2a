"""HTML for the sandbox and the interactive OAuth consent screen: small, self-contained pages.

Every value that comes from the world (names a test or an app chose, message content, URLs) goes
through :func:`esc`; nothing is loaded from outside the fake, so the pages work with no internet.
Callers hold ``world.lock`` while these functions read the world.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask_discord_roles.testing.state import FakeGuild, FakeRole, FakeUser, InteractionRecord
from flask_discord_roles.testing.world import World

__all__ = [
    "COMMANDS",
    "EPHEMERAL",
    "LIVE_SCRIPT",
    "SCOPE_TEXT",
    "STYLE",
    "GuildView",
    "IndexView",
    "Run",
    "consent_page",
    "esc",
    "guild_page",
    "index_page",
    "markdown",
    "page",
    "user_label",
]

EPHEMERAL = 64
COMMANDS = ("claim", "check", "help", "link")
"""What a buyer or a server manager can type: the commands our extension registers."""

SCOPE_TEXT = {
    "identify": "Access your username, avatar, and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
    "guilds.join": "Join servers for you",
    "guilds.members.read": "Read your member info (nickname, avatar, roles) for servers you belong to",
    "connections": "Access your third-party connections",
    "role_connections.write": "Update your connection and metadata for this app",
    "applications.commands": "Use application commands",
    "openid": "Sign you in with OpenID Connect",
}

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#313338;color:#dbdee1}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
a{color:#00a8fc}h1,h2{color:#f2f3f5}h2{margin-top:1.6rem;font-size:1.1rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #3f4147;
text-align:left;vertical-align:top}
.badge{font-size:.75rem;background:#5865f2;color:#fff;border-radius:3px;padding:0 .35rem;margin-left:.3rem}
.badge.managed{background:#4e5058}.badge.bot{background:#248046}.muted{color:#949ba4}
.msg{background:#2b2d31;border-left:3px solid #5865f2;padding:.5rem .75rem;margin:.5rem 0}
.msg.ephemeral{border-left-color:#949ba4}.content{white-space:pre-wrap}
.embed{border-left:3px solid #4e5058;padding:.25rem .5rem;margin:.25rem 0;background:#232428}
.error{color:#fa777c}form.inline{display:inline}button{cursor:pointer}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem}
"""

# Re-fetches the page and swaps only the live part, so a half-typed command form is left alone.
LIVE_SCRIPT = """<script>
setInterval(async () => {
  const live = document.getElementById("live");
  if (!live) return;
  const answer = await fetch(location.href, {cache: "no-store"});
  if (!answer.ok) return;
  const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = doc.getElementById("live");
  if (fresh) live.replaceWith(fresh);
}, 1500);
</script>"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, *, live: bool = False) -> bytes:
    extra = LIVE_SCRIPT + '<noscript><meta http-equiv="refresh" content="3"></noscript>' if live else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style>{extra}</head><body><main>{body}</main></body></html>"
    ).encode()


def user_label(user: FakeUser | None, user_id: str = "") -> str:
    if user is None:
        return f'<span class="muted">unknown user {esc(user_id)}</span>'
    shown = esc(user.global_name or user.username)
    handle = f' <span class="muted">@{esc(user.username)}</span>' if user.global_name else ""
    badge = '<span class="badge bot">APP</span>' if user.bot else ""
    return f"{shown}{handle}{badge}"


def _button(action: str, label: str, fields: Mapping[str, str], *, disabled: bool = False) -> str:
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in fields.items())
    state = " disabled" if disabled else ""
    return (
        f'<form class="inline" method="post" action="{esc(action)}">{hidden}'
        f"<button{state}>{esc(label)}</button></form>"
    )


# -- index ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexView:
    current_user_id: str | None
    interactive_consent: bool
    interactions_urls: Mapping[str, str]
    notice: str | None


def index_page(world: World, view: IndexView) -> bytes:
    people = [u for u in world.users.values() if not u.bot]
    options = "".join(
        f'<option value="{esc(u.id)}"{" selected" if u.id == view.current_user_id else ""}>'
        f"{esc(u.global_name or u.username)} (@{esc(u.username)})</option>"
        for u in people
    )
    current = world.users.get(view.current_user_id or "")
    who = user_label(current) if current else '<span class="muted">nobody yet</span>'
    guilds = "".join(
        f'<li><a href="/sandbox/guilds/{esc(g.id)}">{esc(g.name)}</a> '
        f'<span class="muted">{len(g.members)} members</span></li>'
        for g in world.guilds.values()
    )
    users = "".join(f"<li>{user_label(u)} <span class='muted'>{esc(u.id)}</span></li>" for u in people)
    bots = "".join(_bot_row(world, app_id, view.interactions_urls) for app_id in world.bots)
    mode = "interactive (a consent page)" if view.interactive_consent else "automatic (no page)"
    toggle = "auto" if view.interactive_consent else "interactive"
    notice = f'<p class="error">{esc(view.notice)}</p>' if view.notice else ""
    body = f"""<h1>Discord sandbox</h1>{notice}
<p>You are: <strong id="current-user">{who}</strong></p>
<form method="post" action="/sandbox/act-as"><label>Act as <select name="user_id">{options}</select>
</label> <button>Switch</button></form>
<p>OAuth consent: {esc(mode)} {_button("/sandbox/consent", f"Make it {toggle}", {"mode": toggle})}</p>
<div class="cols"><section><h2>Servers</h2><ul>{guilds or "<li class='muted'>none</li>"}</ul>
<h2>Users</h2><ul>{users or "<li class='muted'>none</li>"}</ul></section>
<section><h2>Applications</h2><table><tr><th>App</th><th>Interactions endpoint URL</th></tr>{bots}
</table></section></div>
{_role_connections(world)}"""
    return page("Discord sandbox", body)


def _role_connections(world: World) -> str:
    """What each application wrote as each user's role connection (Linked Roles), with the names the
    application declared for its keys, as a user's profile shows them."""
    rows = []
    for (user_id, app_id), connection in sorted(world.role_connections.connections.items()):
        bot = world.bots.get(app_id)
        names = {record.key: record.name for record in world.role_connections.records(app_id)}
        values = "".join(
            f'<li data-key="{esc(key)}">{esc(names.get(key, key))}: <strong>{esc(value)}</strong></li>'
            for key, value in sorted(connection.metadata.items())
        )
        rows.append(
            f'<tr data-user-id="{esc(user_id)}" data-application-id="{esc(app_id)}">'
            f"<td>{user_label(world.users.get(user_id), user_id)}</td>"
            f"<td>{esc(bot.name if bot else app_id)}</td>"
            f"<td class='platform'>{esc(connection.platform_name or '')}</td>"
            f"<td><ul class='metadata'>{values or '<li class=muted>no values</li>'}</ul></td></tr>"
        )
    table = "".join(rows) or "<tr><td colspan='4' class='muted'>none yet</td></tr>"
    return (
        '<section id="role-connections"><h2>Linked Roles connections</h2><table><tr><th>User</th>'
        f"<th>App</th><th>Platform</th><th>Metadata</th></tr>{table}</table></section>"
    )


def _bot_row(world: World, app_id: str, urls: Mapping[str, str]) -> str:
    bot = world.bots[app_id]
    url = urls.get(app_id, "")
    return (
        f"<tr><td>{esc(bot.name)}<br><span class='muted'>{esc(app_id)}</span></td><td>"
        f'<form method="post" action="/sandbox/bots/{esc(app_id)}/interactions-url">'
        f'<input name="url" size="40" value="{esc(url)}" placeholder="https://…/interactions"> '
        "<button>Save</button></form></td></tr>"
    )


# -- a guild ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One interaction a person sent from the sandbox, and what the app answered at once."""

    token: str
    guild_id: str
    user_id: str
    application_id: str
    label: str
    status: int | None = None
    answer: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class GuildView:
    current_user_id: str | None
    interactions_urls: Mapping[str, str]
    runs: list[Run]
    notice: str | None


def guild_page(world: World, guild: FakeGuild, view: GuildView) -> bytes:
    base = f"/sandbox/guilds/{guild.id}"
    current = world.users.get(view.current_user_id or "")
    notice = f'<p class="error">{esc(view.notice)}</p>' if view.notice else ""
    body = f"""<p><a href="/sandbox">← Sandbox</a></p><h1>{esc(guild.name)}</h1>{notice}
<p>You are: <strong id="current-user">{user_label(current) if current else "nobody"}</strong>
(<a href="/sandbox">change</a>)</p>
{_command_form(world, guild, base, current, view.interactions_urls)}
<div id="live"><div class="cols"><section><h2>Roles</h2>{_roles_table(world, guild, base)}</section>
<section><h2>Members</h2>{_members_table(world, guild)}</section></div>
<h2>Conversation</h2>{_runs(world, guild, base, view.runs)}</div>"""
    return page(f"{guild.name} · Discord sandbox", body, live=True)


def _roles_table(world: World, guild: FakeGuild, base: str) -> str:
    roles = list(reversed(world.ordered_roles(guild)))
    rows = []
    for index, role in enumerate(roles):
        badges = _role_badges(world, role)
        move = f"{base}/roles/{role.id}/move"
        up = _button(move, "▲ up", {"direction": "up"}, disabled=index == 0)
        down = _button(move, "▼ down", {"direction": "down"}, disabled=index == len(roles) - 1)
        holders = sum(1 for m in guild.members.values() if role.id in m.roles)
        rows.append(
            f'<tr data-role-id="{esc(role.id)}"><td>{esc(role.name)}{badges}</td>'
            f"<td class='muted'>{role.position}</td><td>{holders}</td><td>{up} {down}</td></tr>"
        )
    everyone = guild.everyone
    rows.append(f"<tr><td>{esc(everyone.name)}</td><td class='muted'>0</td><td>all</td><td></td></tr>")
    return (
        "<table><tr><th>Role (highest first)</th><th>Pos.</th><th>Members</th><th>Move</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _role_badges(world: World, role: FakeRole) -> str:
    badges = ""
    if role.managed:
        badges += '<span class="badge managed">managed</span>'
    if role.bot_id is not None:
        bot_user = world.users.get(role.bot_id)
        name = bot_user.username if bot_user else role.bot_id
        badges += f'<span class="badge bot">bot role of {esc(name)}</span>'
    return badges


def _members_table(world: World, guild: FakeGuild) -> str:
    rows = []
    for member in guild.members.values():
        held = sorted(
            (guild.roles[r] for r in member.roles if r in guild.roles),
            key=lambda r: r.hierarchy_key,
            reverse=True,
        )
        names = ", ".join(esc(r.name) for r in held) or '<span class="muted">no roles</span>'
        owner = '<span class="badge">owner</span>' if member.user_id == guild.owner_id else ""
        label = user_label(world.users.get(member.user_id), member.user_id)
        rows.append(f'<tr data-user-id="{esc(member.user_id)}"><td>{label}{owner}</td><td>{names}</td></tr>')
    return "<table><tr><th>Member</th><th>Roles</th></tr>" + "".join(rows) + "</table>"


def _command_form(
    world: World, guild: FakeGuild, base: str, current: FakeUser | None, urls: Mapping[str, str]
) -> str:
    if current is None:
        return '<p class="muted">Pick who you are on the <a href="/sandbox">sandbox page</a> first.</p>'
    if current.id not in guild.members:
        join = _button(f"{base}/join", "Join this server", {})
        return f"<p>You are not a member of this server. {join}</p>"
    apps = [b for b in world.bots.values() if b.user_id in guild.members]
    if not apps:
        return '<p class="muted">No application is in this server yet.</p>'
    bot_options = "".join(
        f'<option value="{esc(b.application_id)}"{"" if b.application_id in urls else " disabled"}>'
        f"{esc(b.name)}{'' if b.application_id in urls else ' (no interactions URL)'}</option>"
        for b in apps
    )
    commands = "".join(f'<option value="{c}">/{c}</option>' for c in COMMANDS)
    return f"""<form method="post" action="{esc(base)}/command">
<select name="application_id" aria-label="Application">{bot_options}</select>
<select name="command" aria-label="Command">{commands}</select>
<label>code: <input name="code" size="24" placeholder="optional for /claim"></label>
<button>Send</button></form>"""


def _runs(world: World, guild: FakeGuild, base: str, runs: Iterable[Run]) -> str:
    shown = [_run(world, guild, base, run) for run in runs]
    return "".join(shown) or '<p class="muted">Nothing sent yet.</p>'


def _run(world: World, guild: FakeGuild, base: str, run: Run) -> str:
    who = user_label(world.users.get(run.user_id), run.user_id)
    bot = world.bots.get(run.application_id)
    head = f"<p>{who} used <strong>{esc(run.label)}</strong> with {esc(bot.name if bot else '?')}</p>"
    record = world.interactions.get(run.token)
    parts = [head]
    if run.error is not None:
        parts.append(f'<p class="error">{esc(run.error)}</p>')
    elif run.answer is None:
        parts.append('<p class="muted">Sending…</p>')
    else:
        parts.append(_answer(world, guild, base, run, record))
    if record is not None:
        parts.extend(_message(guild, base, run, m, "follow-up") for m in record.followups.values())
    return f'<article data-token="{esc(run.token[-12:])}">{"".join(parts)}</article>'


def _answer(world: World, guild: FakeGuild, base: str, run: Run, record: InteractionRecord | None) -> str:
    answer = run.answer or {}
    kind = answer.get("type")
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    original = record.original if record is not None else None
    if kind == 5:
        if original is None:
            flags = int(data.get("flags") or 0) if data else 0
            hidden = " ephemeral" if flags & EPHEMERAL else ""
            return f'<div class="msg{hidden}"><em>{esc(_bot_name(world, run))} is thinking…</em></div>'
        return _message(guild, base, run, original, "edited answer")
    if kind == 4:
        return _message(guild, base, run, original or data or {}, "answer")
    if kind == 7:
        return _message(guild, base, run, data or {}, "updated message")
    if kind == 6:
        if original is not None:
            return _message(guild, base, run, original, "edited message")
        return '<p class="muted">Acknowledged (the app will update the message).</p>'
    if kind == 9:
        return '<p class="muted">The app opened a modal; the sandbox cannot show modals.</p>'
    return f'<p class="muted">Answer: {esc(answer)}</p>'


def _bot_name(world: World, run: Run) -> str:
    bot = world.bots.get(run.application_id)
    return bot.name if bot else "The app"


def _message(guild: FakeGuild, base: str, run: Run, message: Mapping[str, Any], what: str) -> str:
    ephemeral = int(message.get("flags") or 0) & EPHEMERAL
    note = "Only you can see this · " if ephemeral else ""
    content = message.get("content") or ""
    embeds = "".join(_embed(e) for e in message.get("embeds") or [] if isinstance(e, dict))
    rows = "".join(_row(base, run, row) for row in message.get("components") or [] if isinstance(row, dict))
    return (
        f'<div class="msg{" ephemeral" if ephemeral else ""}">'
        f'<div class="muted">{esc(note)}{esc(what)}</div>'
        f'<div class="content">{markdown(content)}</div>{embeds}{rows}</div>'
    )


def markdown(text: object) -> str:
    """The little Markdown our messages use, as Discord shows it: **bold**, *italics* and `code`.

    The text is escaped first; the patterns only match characters escaping leaves alone.
    """
    safe = esc(text)
    safe = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", safe)
    safe = re.sub(r"\*\*([^*\n]+)\*\*", r"<strong>\1</strong>", safe)
    return re.sub(r"(?<![*\w])\*([^*\n]+)\*(?![*\w])", r"<em>\1</em>", safe)


def _embed(embed: Mapping[str, Any]) -> str:
    title = f"<strong>{esc(embed['title'])}</strong>" if embed.get("title") else ""
    text = f'<div class="content">{markdown(embed["description"])}</div>' if embed.get("description") else ""
    fields = "".join(
        f"<div><strong>{esc(f.get('name', ''))}</strong>: {markdown(f.get('value', ''))}</div>"
        for f in embed.get("fields") or []
        if isinstance(f, dict)
    )
    return f'<div class="embed">{title}{text}{fields}</div>'


def _row(base: str, run: Run, row: Mapping[str, Any]) -> str:
    items = row.get("components") if row.get("type") == 1 else [row]
    return "<div>" + "".join(_component(base, run, c) for c in items or [] if isinstance(c, dict)) + "</div>"


def _component(base: str, run: Run, component: Mapping[str, Any]) -> str:
    label = str(component.get("label") or component.get("custom_id") or "button")
    if component.get("type") != 2:
        return f'<span class="muted">[{esc(label)}: not supported by the sandbox]</span> '
    if component.get("style") == 5:
        url = str(component.get("url") or "")
        # Only web links become links: a javascript: URL from an app must not run in this page.
        if urlsplit(url).scheme in ("http", "https"):
            return f'<a href="{esc(url)}" rel="noreferrer">{esc(label)} ↗</a> '
        return f"<span>{esc(label)}</span> "
    fields = {
        "application_id": run.application_id,
        "custom_id": str(component.get("custom_id") or ""),
        "from_token": run.token,
    }
    return _button(f"{base}/press", label, fields, disabled=bool(component.get("disabled"))) + " "


# -- OAuth consent ----------------------------------------------------------------------------------


def consent_page(
    world: World, app_name: str, scopes: Iterable[str], query: str, current_user_id: str | None
) -> bytes:
    people = [u for u in world.users.values() if not u.bot]
    options = "".join(
        f'<option value="{esc(u.id)}"{" selected" if u.id == current_user_id else ""}>'
        f"{esc(u.global_name or u.username)} (@{esc(u.username)})</option>"
        for u in people
    )
    picker = (
        f'<p><label>Signed in as <select name="user_id">{options}</select></label></p>'
        if people
        else '<p class="muted">A new Discord user will be created for you.</p>'
    )
    items = "".join(
        f"<li>{esc(SCOPE_TEXT.get(s, s))} <span class='muted'>({esc(s)})</span></li>" for s in scopes
    )
    body = f"""<h1>{esc(app_name)}</h1><p>wants to access your Discord account</p>
<form method="post" action="/oauth2/authorize"><input type="hidden" name="query" value="{esc(query)}">
{picker}<p>This will allow the developer of {esc(app_name)} to:</p><ul>{items}</ul>
<button name="decision" value="cancel">Cancel</button>
<button name="decision" value="authorize">Authorize</button></form>"""
    return page(f"Authorize {app_name} · Discord", body)
