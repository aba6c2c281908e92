"""Settings: one typed object from the environment and a TOML file, the 2018 hack's settings mapped onto
it, and the log format."""
