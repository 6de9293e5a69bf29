"""A Sphinx extension that keeps each page's scripts unique.

Jupyter Book 1.0.4 with sphinx-thebe 0.3.1 adds the inline script that declares
`const THEBE_JS_URL` twice to every page; the browser then reports "Identifier
'THEBE_JS_URL' has already been declared" on each page (tests/test_browser.py sees it).
Dropping the repeated entry from the page's script list removes the error and nothing else.
"""


def _key(script):
    attributes = getattr(script, "attributes", {}) or {}
    # The repeated inline scripts differ only in an empty filename: None in one copy, "" in the other.
    return str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
