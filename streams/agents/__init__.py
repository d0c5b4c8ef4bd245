"""Faust agents: decode, call the pure logic, emit. One module per input stream."""
