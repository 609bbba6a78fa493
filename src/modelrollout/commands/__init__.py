"""One light module per subcommand: arguments here, the component imported only in ``run``."""
