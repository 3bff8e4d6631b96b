"""Run directories and what is rendered from them: tables (Markdown, LaTeX), figures, galleries, the HTML report."""
