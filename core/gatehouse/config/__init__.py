"""config.yaml as pydantic models, read and checked as a whole.

LiteLLM's section names are accepted as aliases of ours (``litellm_params`` for ``params``,
``litellm_settings`` for ``settings``) so its config files load unchanged. ``os.environ/NAME``
strings are resolved while loading, from the environment or, with
``general_settings.key_management_system``, from the key manager it names. Every problem is a
:class:`ConfigError` naming the file, the field path as the file spells it and what was
expected; the mistakes of a file are gathered and refused together (:class:`Problems`), so one
run names them all.

These names are the config's public face, which plugins and the CLI use; the models of one
section (``GeneralSettings``, ``ModelParams``, ...) are imported from the module of that section.
"""

from .file import Config
from .loading import config_from_dict, load_config
from .problems import ConfigError, Problems

__all__ = ["Config", "ConfigError", "Problems", "config_from_dict", "load_config"]
