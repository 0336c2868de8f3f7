"""CLI sub-commands, one module each; see :data:`atustc.cli.COMMANDS`."""
