"""The review package: a static site a clinical committee reads, prints and signs off
(`acne-scar-cds review --out review/`; README "Going live safely").

    build.py      what the package shows: every card, its rule, evidence, fixtures, withholds;
                  the data elements, the terminology, the fixtures, the fingerprint, the sign-off
    changes.py    what changed since a previous package or a git ref
    html.py       Jinja2 templates (package data, autoescaped) and card Markdown as HTML
    templates/    the pages, one stylesheet inlined in each (the site opens from disk)
"""
