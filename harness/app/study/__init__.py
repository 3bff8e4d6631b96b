"""A blind human preference study over a finished run's samples: the run's `samples.json` names
each row's cached items, `serve` shows raters pairs of rows on the same prompt and seed, votes go
to SQLite, and `results` turns them into win rates, rater agreement and scorer-vs-human agreement.

It lives in the core (harness/) because it reads run directories and the store like `report`
does and imports no plugin package; only the web server needs the optional `study` extra."""
