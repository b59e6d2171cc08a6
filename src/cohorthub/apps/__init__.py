"""SDK apps: keys, allowed origins, and the data the Braze Web SDK sends."""
