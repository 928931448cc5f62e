"""``astrojepa plugins``: what encoders, losses and maskers are registered."""

from __future__ import annotations

from astrojepa_cli.commands.common import JsonOption, cli_command, report
from astrojepa_cli.commands.render import plugin_tables
from astrojepa_cli.console import stderr


@cli_command
def plugins(json_output: JsonOption = False) -> None:
    """List the registered encoders, losses and maskers, with a one-line description each,
    and any third-party plugin that failed to load.

    Examples:

      astrojepa plugins

      astrojepa plugins --json | jq '.loss | keys'
    """
    import registry

    listing = {kind: registry.describe(kind) for kind in registry.KINDS}
    listing["broken"] = registry.broken()
    report(listing, json_output, lambda: stderr.print(plugin_tables(listing)))
