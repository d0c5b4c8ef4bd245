"""Stream processing: pure domain logic (lifecycle, tracking, dispatch, OTP) and the Faust
agents at the edge (``streams.app``, ``streams.agents``). Pure modules never import faust."""
