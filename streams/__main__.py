"""``python -m streams worker``: the Faust worker (settings from MILESTREAM_* variables).

Faust's own web server is off unless ``--with-web`` is given: it binds 0.0.0.0:6066 otherwise,
so two workers on one machine would collide."""

import sys

from streams.app import app

if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"] and not any(a.startswith(("--with-web", "--without-web")) for a in sys.argv):
        sys.argv.append("--without-web")
    app.main()
