"""``infersight db``: the store's schema (Alembic migrations shipped in the package)."""

from __future__ import annotations

import typer
from rich.console import Console

from infersight.cli.storeargs import Store, sqlite_path, store_errors, store_url

app = typer.Typer(help="The SQL store's schema.", no_args_is_help=True, rich_markup_mode=None)
console = Console(stderr=True, soft_wrap=True)


@app.command()
def upgrade(ctx: typer.Context, store: Store = None) -> None:
    """Apply the store's migrations (creates the tables on a new database)."""
    from infersight.sinks.store import current_revision, head_revision, make_engine
    from infersight.sinks.store import upgrade as apply

    url = store_url(ctx, store)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with store_errors():
        engine = make_engine(url)
        before = current_revision(engine)
        apply(engine)
        head = head_revision()
    where = engine.url.render_as_string()
    if before == head:
        console.print(f"{where} is up to date (revision {head})", highlight=False)
    else:
        console.print(f"{where}: {before or 'empty'} → {head}", highlight=False)


@app.command()
def current(ctx: typer.Context, store: Store = None) -> None:
    """Print the store's revision and the one this version expects."""
    from infersight.sinks.store import current_revision, head_revision, make_engine

    with store_errors():
        revision = current_revision(make_engine(store_url(ctx, store)))
    print(f"current: {revision or 'none'}  expected: {head_revision()}")
