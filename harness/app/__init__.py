"""The applications: one service function per user action (services/), the CLI (cli/) and the human-study web app (study/)."""
