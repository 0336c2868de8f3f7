"""Protocol definitions as data: one TOML file per dataset protocol, read by :mod:`atustc.protocol`."""
