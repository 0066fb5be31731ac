"""Finding a workspace, its folders, and creating a new one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from digestcli.config import Settings, load_settings
from digestcli.errors import ConfigError, WorkspaceNotFound

CONFIG_NAME = "digest.toml"


@dataclass(frozen=True)
class Workspace:
    """A newsletter's folder: digest.toml, templates/, drafts/ and .digest/."""

    root: Path

    @property
    def config_path(self) -> Path:
        """The digest.toml file."""
        return self.root / CONFIG_NAME

    @property
    def templates_dir(self) -> Path:
        """The user-editable templates."""
        return self.root / "templates"

    @property
    def drafts_dir(self) -> Path:
        """One Markdown file per issue."""
        return self.root / "drafts"

    @property
    def state_dir(self) -> Path:
        """Local, git-ignored state."""
        return self.root / ".digest"

    @property
    def db_path(self) -> Path:
        """The SQLite store."""
        return self.state_dir / "digest.db"

    @property
    def outbox_dir(self) -> Path:
        """Where the outbox transport writes messages."""
        return self.state_dir / "outbox"

    def settings(self) -> Settings:
        """Load digest.toml."""
        return load_settings(self.config_path)


def find_workspace(start: Path | None = None, override: str | None = None) -> Workspace:
    """Locate the workspace: --workspace, $DIGEST_WORKSPACE, or the nearest digest.toml up."""
    chosen = override or os.environ.get("DIGEST_WORKSPACE")
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise WorkspaceNotFound(
                f"{root}: no {CONFIG_NAME} there; run `digest init {chosen}` to create one."
            )
        return _checked(Workspace(root))
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return _checked(Workspace(folder))
    raise WorkspaceNotFound(
        f"no {CONFIG_NAME} in {here} or any folder above it; "
        "run `digest init DIR` to create a workspace, or pass --workspace DIR."
    )


def _checked(workspace: Workspace) -> Workspace:
    # A mistake in digest.toml (an unknown key, a wrong type) is reported by whichever command
    # runs first, not only when rendering or sending; reading it costs well under a millisecond.
    workspace.settings()
    return workspace


def default_templates() -> Path:
    """The default theme: packaged inside the wheel, or the repository's templates/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "email.html.j2").is_file():
            return candidate
    raise ConfigError(f"the default templates are missing from {here}; reinstall digest.")


CONFIG_TEMPLATE = """\
# digest.toml: publication and sending settings. Never put secrets here:
# API keys and passwords come from environment variables (DIGEST_*).

[publication]
name = "{name}"
from = "{name} <digest@example.org>"
# reply_to = "editor@example.org"
address = "1 Example Street, Example City"   # postal address shown in the footer
# web_url = "https://example.org/digest/"    # where the web versions live (digest publish)

[unsubscribe]
url = "https://example.org/unsubscribe"     # the signed token is added as ?token=...
# mailto = "unsubscribe@example.org"         # also offered in List-Unsubscribe

[transport]
kind = "outbox"        # outbox | smtp | postmark | sendgrid | mailgun | resend
# base_url = "..."     # HTTP transports: regional endpoint or a local server
# timeout = 30         # seconds per request
# domain = "mg.example.org"      # mailgun
# message_stream = "broadcast"   # postmark
# host = "smtp.example.org"      # smtp, with port, security (starttls|ssl|none), username

[sending]
rate = 0               # messages per second, 0 = the provider's documented default
requests_per_second = 0  # API requests per second, 0 = the provider's default (Resend: 2)
concurrency = 4        # batches in flight

# [serve]                # `digest serve`, the page unsubscribe links and webhooks point at
# url = "https://news.example.org"   # then [unsubscribe] url defaults to {{url}}/unsubscribe

# [bounces]
# soft_limit = 3         # soft bounces in a row before an address counts as bounced

# [archive]              # `digest publish`: the web archive and Atom feed of sent issues
# out = "site"           # the folder it writes (and `digest serve` serves)
# feed_entries = 20      # issues in feed.xml

# [feeds]                # `digest collect`: the sources `digest feeds add` follows
# urls = []
# timeout = 10           # seconds per page or feed
# max_bytes = 5000000    # a larger page or feed is refused
"""


def init_workspace(target: Path, name: str = "My Digest") -> Workspace:
    """Create a fresh workspace in target with a copy of the default templates."""
    target = target.resolve()
    if (target / CONFIG_NAME).exists():
        raise ConfigError(f"{target / CONFIG_NAME} already exists; this is a workspace already.")
    if '"' in name or "\\" in name or "\n" in name:
        raise ConfigError("the publication name may not contain quotes, backslashes or newlines.")
    if (target / "templates").exists():
        raise ConfigError(f"{target / 'templates'} already exists; move it away or init elsewhere.")
    target.mkdir(parents=True, exist_ok=True)
    source = default_templates()
    shutil.copytree(
        source, target / "templates", ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    (target / "drafts").mkdir(exist_ok=True)
    gitignore = target / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if ".digest/" not in lines:
        lines.append(".digest/")
        gitignore.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (target / CONFIG_NAME).write_text(CONFIG_TEMPLATE.format(name=name), encoding="utf-8")
    return Workspace(target)
