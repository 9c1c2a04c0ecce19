"""A replica's SQLite storage: the committed ledger and the safety state."""
