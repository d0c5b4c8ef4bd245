"""``python -m streams worker``: the Faust worker (settings from MILESTREAM_* variables)."""

from streams.app import app

if __name__ == "__main__":
    app.main()
