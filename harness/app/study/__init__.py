"""A blind human preference study over a finished run's samples: the run's `samples.json` names
each row's cached items, `invite` makes one secret link per rater, `serve` shows invited raters
pairs of rows on the same prompt and seed (nothing on the page tells the rows apart), votes go to
SQLite, and `results` turns them into win rates, rater agreement, per-rater self-consistency and
scorer-vs-human agreement. The actions are service functions (harness.app.services.study).

It lives in the core (harness/) because it reads run directories and the store like `report`
does and imports no plugin package; only the web server needs the optional `study` extra."""
