"""The limit of our stack, for `make bench`: Flask under gunicorn (one sync worker, the
project's own versions of both), answering a CDS Hooks call with `{"cards": []}` after only
parsing its JSON body. Nothing a real service could skip is left out but the work itself.

Started by bench/run.py: `gunicorn -w 1 --chdir bench/peers bare_flask:app`.
"""

from __future__ import annotations

from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.post("/cds-services/<service_id>")
def call(service_id: str) -> ResponseReturnValue:
    if not isinstance(request.get_json(silent=True), dict):
        abort(400)
    return jsonify(cards=[])
