"""classroom's Hydra configs (found as ``pkg://classroom.conf``).

Importing this package (Hydra does, before composing) registers every config model's
defaults under ``schema/``: the YAML files here set only what differs from them.
"""

from classroom.launch.config_store import register_schemas

register_schemas()
