"""The ganwatch command line, above both packages: the server (monitor) and the client
(trainer_client). ``ganwatch --help``."""
