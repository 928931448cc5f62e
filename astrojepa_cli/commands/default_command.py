"""Command groups with a default command, so ``astrojepa plot RUN`` means ``astrojepa plot run RUN`` and
``astrojepa fetch-data SOURCE`` means ``astrojepa fetch-data import SOURCE``, while ``plot compare`` and
``fetch-data list`` stay subcommands with their own ``--help``."""

from __future__ import annotations

import typer
from typer.core import TyperGroup


def group_with_default(default: str) -> type[TyperGroup]:
    """A Typer group class that hands a first word naming none of its commands to command ``default``."""

    class GroupWithDefault(TyperGroup):
        def resolve_command(self, ctx: typer.Context, args: list[str]):
            if args and args[0] not in self.commands and not args[0].startswith("-"):
                return default, self.commands[default], args
            return super().resolve_command(ctx, args)

    return GroupWithDefault
