"""Stream workers outside Faust: plain batched consumers for the paths Faust's per-event loop is too slow for."""
