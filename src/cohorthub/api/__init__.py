"""HTTP routes and wire types; maps domain errors to status codes."""
