"""The `ganrm-bench` command line: parses arguments, calls a service, prints."""
